import { CATALOG } from "../catalog/methods";
import { fromBase64Url, toBase64Url } from "../crypto/encoding";
import type { Arm, DecisionClaims } from "./decision";
import type { FallbackReason } from "./ranking";

/**
 * The packed payload of a decision id (format 1). A batch of 100 feedback events carries 100 ids
 * within the 64 KiB body limit, so every field is a few bytes:
 *
 *   byte 0      format version (1; the JSON payload of the first ids starts with "{")
 *   byte 1      arm code (bits 0-1) | customer tag present (bit 2) | fallback reason code (bits 3-7)
 *   bytes 2-7   issued at, epoch ms, 48-bit big-endian
 *   bytes 8-16  nonce: random, so that two answers are two ids (and two decision keys)
 *   bytes 17-25 customer tag, when bit 2 is set
 *   then        one byte per ranked method, in rank order: its index in CATALOG
 *
 * The codes and the catalog order are part of ids already issued, so they are only ever appended to.
 */
const VERSION = 1;
// With the time beside it, two answers in the same millisecond share an id with chance 2^-72.
export const NONCE_BYTES = 9;
const TAG_BYTES = 9;
const HEAD_BYTES = 8 + NONCE_BYTES;
const TAG_BIT = 0b100;

// Code 0 is null. Record<…> makes a new arm or reason without a code a compile error.
const ARM_CODES: Record<Arm, number> = { treatment: 1, holdout: 2 };
const FALLBACK_CODES: Record<FallbackReason, number> = { customer_deleted: 1, personalization_disabled: 2, holdout: 3, no_history: 4, degraded: 5, guest: 6 };
const ARMS = decoder(ARM_CODES);
const FALLBACKS = decoder(FALLBACK_CODES);
const CATALOG_INDEX: ReadonlyMap<string, number> = new Map(CATALOG.map((m, i) => [m.id, i]));

function decoder<T extends string>(codes: Record<T, number>): (T | null)[] {
  const out: (T | null)[] = [null];
  for (const [value, code] of Object.entries(codes) as [T, number][]) out[code] = value;
  return out;
}

/** Claims that cannot be packed are a bug of the caller (every answered method is a catalog method). */
function unpackable(what: string): never {
  throw new Error(`decision id: cannot pack ${what}`);
}

export function packClaims(claims: DecisionClaims, nonce: Uint8Array): Uint8Array {
  const tag = claims.c === undefined ? null : fromBase64Url(claims.c);
  if (tag !== null && tag?.length !== TAG_BYTES) unpackable(`customer tag ${claims.c}`);
  if (!Number.isSafeInteger(claims.t) || claims.t < 0 || claims.t >= 2 ** 48) unpackable(`time ${claims.t}`);
  if (nonce.length !== NONCE_BYTES) unpackable("a nonce of another length");
  const arm = claims.a === null ? 0 : (ARM_CODES[claims.a] ?? unpackable(`arm ${claims.a}`));
  const fallback = claims.f === null ? 0 : (FALLBACK_CODES[claims.f] ?? unpackable(`fallback reason ${claims.f}`));
  const out = new Uint8Array(HEAD_BYTES + (tag ? TAG_BYTES : 0) + claims.r.length);
  out[0] = VERSION;
  out[1] = arm | (tag ? TAG_BIT : 0) | (fallback << 3);
  const view = new DataView(out.buffer);
  view.setUint16(2, Math.floor(claims.t / 2 ** 32));
  view.setUint32(4, claims.t % 2 ** 32);
  out.set(nonce, 8);
  if (tag) out.set(tag, HEAD_BYTES);
  claims.r.forEach((id, i) => {
    const index = CATALOG_INDEX.get(id);
    if (index === undefined || index > 0xff) unpackable(`method ${id}`);
    out[out.length - claims.r.length + i] = index;
  });
  return out;
}

/** The claims of a packed payload (its signature already checked), or null if it is not one. */
export function unpackClaims(bytes: Uint8Array, merchantId: string): DecisionClaims | null {
  if (bytes[0] !== VERSION || bytes.length < HEAD_BYTES) return null;
  const flags = bytes[1]!;
  const hasTag = (flags & TAG_BIT) !== 0;
  const a = ARMS[flags & 0b11];
  const f = FALLBACKS[flags >> 3];
  const rankStart = HEAD_BYTES + (hasTag ? TAG_BYTES : 0);
  if (a === undefined || f === undefined || bytes.length < rankStart) return null;
  const r: string[] = [];
  for (const index of bytes.subarray(rankStart)) {
    const method = CATALOG[index];
    if (!method) return null;
    r.push(method.id);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const t = view.getUint16(2) * 2 ** 32 + view.getUint32(4);
  const claims: DecisionClaims = { m: merchantId, a, f, r, t };
  if (hasTag) claims.c = toBase64Url(bytes.subarray(HEAD_BYTES, rankStart));
  return claims;
}
