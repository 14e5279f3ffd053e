import { constantTimeEqual, hmacSha256, randomToken, sha256Hex } from "../crypto/hash";
import { toBase64Url, toHex } from "../crypto/encoding";
import type { DeviceType } from "../schemas/common";
import { readSession, readSessionReplay, type SessionReplay, type StoredSession, writeSession, writeSessionReplay } from "../storage/checkoutSessions";

/** `cs_` + 96 random bits in hex: the session id, also the KV key's suffix. */
const SESSION_ID = /^cs_[0-9a-f]{24}$/;
/** `<id>_secret_` + 192 random bits in base64url (API.md §7 asks for at least 128). */
const CLIENT_SECRET = /^(cs_[0-9a-f]{24})_secret_[A-Za-z0-9_-]{32}$/;

export interface NewSession {
  merchantId: string;
  customerRef: string;
  amount?: number | undefined;
  currency?: string | undefined;
  country?: string | undefined;
  deviceType?: DeviceType | undefined;
  expiresInSeconds: number;
  nowMs: number;
  /**
   * The latest the session may live: the customer's purge_after when their deletion is pending, so
   * no session (pseudonym, basket) outlives the purge. Never less than the 60 s KV keeps an entry.
   */
  notAfterMs?: number | undefined;
}

/** KV's shortest expirationTtl, and so the shortest session. */
const MIN_SESSION_MS = 60_000;

/**
 * An Idempotency-Key's session: id and secret derived, with HMAC-SHA-256 under the signing key (a
 * pseudorandom function: as unguessable as random bits to anyone without the key), from the merchant,
 * the UTC day, the key and the request as sent. The same request retried derives the same session,
 * so no secret is stored to answer a retry (only a replay record with its expiry and opening time);
 * other content under the same key is another session.
 */
export interface IdempotentOpen {
  signingKey: string;
  idempotencyKey: string;
  /** The request's content in one text form. */
  fingerprint: string;
}

/**
 * A key's derivation names a UTC day; a retry is answered within 24 hours of the first request, so
 * a retry looks up today's session and yesterday's (the one opened less than 24 h ago). The replay
 * record is kept two days: past the end of the day after its own, as long as either rule may ask.
 */
const IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000;
const REPLAY_TTL_SECONDS = (2 * IDEMPOTENCY_WINDOW_MS) / 1000;

async function derivedSessionId(merchantId: string, idem: IdempotentOpen, day: number): Promise<string> {
  // The UTC day is part of it: a retry the same day or within 24 h of the first finds the session it
  // opened (expired or not); a later one opens a new session, never brings back a secret that expired.
  const mac = await hmacSha256(idem.signingKey, `checkout-session:${merchantId}\n${day}\n${idem.idempotencyKey}\n${idem.fingerprint}`);
  return "cs_" + toHex(mac.slice(0, 12));
}

async function derivedClientSecret(signingKey: string, id: string): Promise<string> {
  const secretMac = await hmacSha256(signingKey, `checkout-session-secret:${id}`);
  return `${id}_secret_${toBase64Url(secretMac.slice(0, 24))}`;
}

/** What KV holds for one derived id: its replay record and the session's own entry (either may be missing). */
interface Opened {
  id: string;
  replay: SessionReplay | null;
  stored: StoredSession | null;
}

async function readOpened(kv: KVNamespace, id: string): Promise<Opened> {
  const [replay, stored] = await Promise.all([readSessionReplay(kv, id), readSession(kv, id)]);
  return { id, replay, stored };
}

/** When it was opened: the record says, else the entry; undefined for both written before opened_at was kept. */
const openedAtOf = (o: Opened): string | undefined => (o.replay ? o.replay.opened_at : o.stored?.opened_at);

/**
 * Whether a retry is answered with this session: today's whenever it was stored (a record or an
 * entry, also one written before opened_at was), yesterday's only when it says it was opened less
 * than 24 h ago (records and entries written before that keep the same-day rule).
 */
function answers(o: Opened, today: boolean, nowMs: number): boolean {
  if (!o.replay && !o.stored) return false;
  if (today) return true;
  const openedAt = openedAtOf(o);
  return openedAt !== undefined && nowMs - Date.parse(openedAt) < IDEMPOTENCY_WINDOW_MS;
}

/** What KV holds for a request under an Idempotency-Key: the id a new session takes, and the session a retry is answered with, if any. */
export interface IdempotentLookup {
  todayId: string;
  found: Opened | undefined;
}

/**
 * The reads of openCheckoutSession under an Idempotency-Key, and only reads (no write, whatever they
 * find), so the route runs them beside its D1 read of the customer's deletion state. `nowMs` must be
 * the one the session is then opened with.
 */
export async function lookupIdempotent(kv: KVNamespace, merchantId: string, nowMs: number, idem: IdempotentOpen): Promise<IdempotentLookup> {
  const day = Math.floor(nowMs / IDEMPOTENCY_WINDOW_MS);
  const [todayId, yesterdayId] = await Promise.all([derivedSessionId(merchantId, idem, day), derivedSessionId(merchantId, idem, day - 1)]);
  // Answered as it was, also once expired (the session's own entry is gone with it, so its secret
  // stays refused). The request is the one that opened it (its content is in the derivation).
  const [today, yesterday] = await Promise.all([readOpened(kv, todayId), readOpened(kv, yesterdayId)]);
  // Today's first: one stored today was opened after yesterday's (a retry that did not see it yet).
  const found = answers(today, true, nowMs) ? today : answers(yesterday, false, nowMs) ? yesterday : undefined;
  return { todayId, found };
}

/**
 * Opens a session; the plain client secret exists only in the return value. With an Idempotency-Key
 * a session already opened by the same request within 24 hours (or the same UTC day) is answered as
 * it was (its expires_at, even past), not opened again. `lookup`: lookupIdempotent's answer for the
 * same merchant, key and nowMs, when the caller has read it already.
 */
export async function openCheckoutSession(kv: KVNamespace, s: NewSession, idem?: IdempotentOpen, lookup?: IdempotentLookup): Promise<{ id: string; clientSecret: string; session: StoredSession; replayed: boolean }> {
  let id: string;
  let clientSecret: string;
  const sessionOf = async (expiresAt: string, openedAt: string | undefined): Promise<StoredSession> => ({
    merchant_id: s.merchantId,
    customer_ref: s.customerRef,
    amount: s.amount ?? null,
    currency: s.currency ?? null,
    country: s.country ?? null,
    device_type: s.deviceType ?? null,
    expires_at: expiresAt,
    ...(openedAt === undefined ? {} : { opened_at: openedAt }),
    secret_hash: await sha256Hex(clientSecret),
  });
  if (idem) {
    const { todayId, found } = lookup ?? (await lookupIdempotent(kv, s.merchantId, s.nowMs, idem));
    id = found?.id ?? todayId;
    clientSecret = await derivedClientSecret(idem.signingKey, id);
    if (found) {
      const { replay, stored } = found;
      // A session stored without a replay record: by a write that failed half-way, or by the code
      // before replay records (its entry, kept two days, is the record).
      const expiresAt = (replay?.expires_at ?? stored?.expires_at)!;
      const openedAt = openedAtOf(found);
      const session = await sessionOf(expiresAt, openedAt);
      const left = Math.ceil((Date.parse(expiresAt) - s.nowMs) / 1000);
      await Promise.all([
        // The session's own entry lost while it is still live (its write failed after the record's):
        // put back, never past its expires_at (so never past a purge_after that capped it).
        !stored && left > 0 ? writeSession(kv, id, session, left) : undefined,
        !replay ? writeSessionReplay(kv, id, replayOf(expiresAt, openedAt), REPLAY_TTL_SECONDS) : undefined,
      ]);
      return { id, clientSecret, session: stored ?? session, replayed: true };
    }
  } else {
    id = "cs_" + toHex(crypto.getRandomValues(new Uint8Array(12)));
    clientSecret = `${id}_secret_${randomToken(24)}`;
  }
  let expiresMs = s.nowMs + s.expiresInSeconds * 1000;
  if (s.notAfterMs !== undefined) expiresMs = Math.min(expiresMs, Math.max(s.notAfterMs, s.nowMs + MIN_SESSION_MS));
  const openedAt = new Date(s.nowMs).toISOString();
  const session = await sessionOf(new Date(expiresMs).toISOString(), openedAt);
  // The session's entry expires with it (API.md §7); a key's replay record, which holds no customer
  // data, stays two days, so a late retry is answered, not reopened. The record is written once the
  // session is: a record never stands for a session that was not stored.
  await writeSession(kv, id, session, Math.ceil((expiresMs - s.nowMs) / 1000));
  if (idem) await writeSessionReplay(kv, id, replayOf(session.expires_at, openedAt), REPLAY_TTL_SECONDS);
  return { id, clientSecret, session, replayed: false };
}

/** A replay record: when the session ends and, unless it was stored before opened_at was, when it was opened. */
const replayOf = (expiresAt: string, openedAt: string | undefined): SessionReplay =>
  openedAt === undefined ? { expires_at: expiresAt } : { expires_at: expiresAt, opened_at: openedAt };

/**
 * The live session a client secret opens for `merchantId`, or null. Unknown, expired, garbled and
 * other merchants' secrets all come back as the same null, so probing learns nothing. The hash is
 * compared in constant time.
 */
export async function verifyClientSecret(kv: KVNamespace, clientSecret: string, merchantId: string, nowMs: number): Promise<StoredSession | null> {
  const m = CLIENT_SECRET.exec(clientSecret);
  if (!m || !SESSION_ID.test(m[1]!)) return null;
  const session = await readSession(kv, m[1]!);
  if (!session) return null;
  const matches = await constantTimeEqual(await sha256Hex(clientSecret), session.secret_hash);
  if (!matches || session.merchant_id !== merchantId) return null;
  // KV's expiry is coarse (and eventually consistent): the stored time decides.
  if (!(Date.parse(session.expires_at) > nowMs)) return null;
  return session;
}

/** The session id of a well-formed client secret (for logs: the id is not secret). */
export function sessionIdOf(clientSecret: string): string | null {
  return CLIENT_SECRET.exec(clientSecret)?.[1] ?? null;
}
