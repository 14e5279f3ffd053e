import { conversionStatements } from "../analytics/store";
import type { Env } from "../env";
import { amountBand } from "../personalization/buckets";
import { recencyRef } from "../personalization/recency";
import { FeedbackMessage } from "../schemas/feedback";
import { storeUsageEvents, type UsageEventRow } from "../storage/events";
import { readMerchant } from "../storage/merchants";
import { crossMerchantPeersOf } from "../storage/consent";
import { invalidateProfile, KV_REWRITE_WAIT_MS, type ProfileKey, refreshProfiles } from "../storage/profile";
import { errorText, logEvent } from "../log";
import { retryDelaySeconds, sortDelivery } from "./delivery";
import { acceptCutoff } from "./retention";

/** Profiles refreshed per D1 batch (five statements whatever the count, then one version check; the chunk bounds the JSON parameter and the KV writes in flight). */
const REFRESH_CHUNK = 50;
/**
 * KV allows 1,000 operations per Worker invocation; a batch of 100 messages spends up to ~200 (a
 * merchant read and a profile write each). Peer profiles past this many are left to their TTL.
 */
export const MAX_PEER_DROPS = 500;

export function toUsageRow(m: FeedbackMessage): UsageEventRow {
  return {
    merchant_id: m.merchant_id,
    event_id: m.event_id,
    customer_ref: m.customer_ref,
    method_id: m.method_id,
    amount: m.amount,
    currency: m.currency,
    device_type: m.device_type,
    location_country: m.location_country,
    decision_id: m.decision?.decision_id ?? null,
    offer_id: m.offer_id,
    amount_band: amountBand(m.amount, m.currency),
    recency_ref: recencyRef(Date.parse(m.occurred_at)),
    occurred_at: m.occurred_at,
    received_at: m.received_at,
  };
}

/**
 * Feedback queue consumer: one D1 batch per delivered batch (≤ 100 messages), acked per message.
 * Poison messages are acked and logged (retrying cannot fix them); a failed D1 write retries every
 * valid message with backoff and, after max_retries, the queue moves them to the dead-letter queue.
 */
export async function consumeFeedback(batch: MessageBatch<unknown>, env: Env, _ctx: ExecutionContext): Promise<void> {
  const started = Date.now();
  const { valid, poison } = sortDelivery(batch, FeedbackMessage, "poison feedback message dropped");
  // An all-poison delivery writes nothing, but still has its line.
  if (valid.length === 0) return logStored(batch, [], poison, started);

  const events = valid.map((v) => v.body);
  let outcome;
  try {
    outcome = await storeEvents(env, events);
  } catch (err) {
    const redelivered = valid.some((v) => v.msg.attempts > 1);
    logEvent(redelivered && valid.length > 1 ? "feedback batch write failed again; storing message by message" : "feedback batch write failed; retrying", {
      queue: batch.queue,
      messages: valid.length,
      error: errorText(err),
    });
    // A delivery that already failed once is split: each message in its own D1 batch, so one message
    // that cannot be written takes no neighbour to the dead-letter queue (re-inserts are idempotent).
    if (redelivered && valid.length > 1) return storeOneByOne(env, batch.queue, valid, started, poison);
    for (const { msg } of valid) msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts) });
    return;
  }
  for (const { msg } of valid) msg.ack();

  logStored(batch, [outcome], poison, started);

  await refreshTouchedProfiles(env, [...outcome.inserted, ...outcome.duplicates.filter((i) => valid[i]!.msg.attempts > 1)].map((i) => events[i]!));
}

/**
 * The events and their conversions, one D1 batch. Events paid, and decisions issued, before the
 * accept cutoff at this clock (src/analytics/horizons.ts) are not stored (dropped as expired; a payment whose decision is
 * that old is stored without its conversion: `conversions_expired`).
 */
async function storeEvents(env: Env, events: FeedbackMessage[]) {
  const cutoff = acceptCutoff(new Date());
  const outcome = await storeUsageEvents(env.DB, events.map(toUsageRow), cutoff, conversionStatements(env.DB, events, cutoff));
  const conversionsExpired = outcome.inserted.filter((i) => (events[i]!.decision?.issued_at ?? cutoff) < cutoff).length;
  return { ...outcome, conversionsExpired };
}

type StoreEventsOutcome = Awaited<ReturnType<typeof storeEvents>>;

/** The counters of the `feedback batch stored` lines (docs/feedback.md), over one write or one per message. */
function storedCounts(outcomes: StoreEventsOutcome[]) {
  const dropped = outcomes.flatMap((o) => [...o.dropped.values()]);
  const sum = (count: (o: StoreEventsOutcome) => number) => outcomes.reduce((n, o) => n + count(o), 0);
  return {
    stored: sum((o) => o.inserted.length),
    duplicates: sum((o) => o.duplicates.length),
    dropped_opted_out: dropped.filter((r) => r === "opted_out").length,
    dropped_pending_deletion: dropped.filter((r) => r === "pending_deletion").length,
    dropped_purged: dropped.filter((r) => r === "purged").length,
    dropped_expired: dropped.filter((r) => r === "expired").length,
    conversions_expired: sum((o) => o.conversionsExpired),
  };
}

function logStored(batch: MessageBatch<unknown>, outcomes: StoreEventsOutcome[], poison: number, started: number): void {
  logEvent("feedback batch stored", { queue: batch.queue, messages: batch.messages.length, ...storedCounts(outcomes), poison, duration_ms: Date.now() - started });
}

async function storeOneByOne(env: Env, queue: string, valid: { msg: Message<unknown>; body: FeedbackMessage }[], started: number, poison: number): Promise<void> {
  const stored: FeedbackMessage[] = [];
  const outcomes: StoreEventsOutcome[] = [];
  let failed = 0;
  for (const { msg, body: event } of valid) {
    try {
      const outcome = await storeEvents(env, [event]);
      outcomes.push(outcome);
      // A duplicate here is a redelivery whose first write committed; its refresh may never have run.
      if (outcome.inserted.length > 0 || outcome.duplicates.length > 0) stored.push(event);
      msg.ack();
    } catch (err) {
      failed += 1;
      logEvent("feedback message write failed; retrying", { queue, message_id: msg.id, attempts: msg.attempts, error: errorText(err) });
      msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts) });
    }
  }
  logEvent("feedback batch stored message by message", { queue, messages: valid.length + poison, ...storedCounts(outcomes), failed, poison, duration_ms: Date.now() - started });
  await refreshTouchedProfiles(env, stored);
}

/**
 * New feedback shows in /methods within seconds: the cached profile of every customer whose events
 * were stored is rewritten from D1 (also of a redelivered event found already stored: the delivery
 * that stored it may have failed after its D1 write committed, before this refresh) — all of them with one D1 batch (chunked) and parallel KV writes.
 * Profiles that could not be rewritten (D1 failed, or KV refused: it takes one write per key per
 * second, and another batch or a preference change may just have written that customer) are
 * reloaded and written once more after REFRESH_RETRY_MS; what still fails is logged: the rows are
 * safe and the cache entry expires by itself (TTL 300 s).
 */
async function refreshTouchedProfiles(env: Env, stored: FeedbackMessage[]): Promise<void> {
  const pairs = new Map<string, { merchantId: string; customerRef: string }>();
  for (const e of stored) pairs.set(`${e.merchant_id}\u0000${e.customer_ref}`, { merchantId: e.merchant_id, customerRef: e.customer_ref });
  const crossMerchant = new Map<string, boolean>();
  for (const merchantId of new Set([...pairs.values()].map((p) => p.merchantId))) {
    const merchant = await readMerchant(env, merchantId).catch(() => null);
    crossMerchant.set(merchantId, merchant?.features.cross_merchant ?? false);
  }
  const keys = [...pairs.values()].map((p) => ({ ...p, crossMerchant: crossMerchant.get(p.merchantId) ?? false }));
  // The reloaded profiles say who consented to cross-merchant use here; a chunk that failed to reload
  // counts as consenting (its peers' caches are dropped rather than left stale).
  const consenting: ProfileKey[] = [];
  const first = await refreshInChunks(env, keys, consenting);
  if (first.failed.length > 0) {
    await new Promise((resolve) => setTimeout(resolve, REFRESH_RETRY_MS));
    const retry = await refreshInChunks(env, first.failed, []);
    const gaveUp = retry.failed.length > 0;
    logEvent(gaveUp ? "profile refresh after feedback failed" : "profile refresh after feedback needed a retry", {
      profiles: keys.length,
      failed: retry.failed.length,
      error: String(retry.error ?? first.error),
    });
  }
  if (consenting.length > 0) await dropPeerProfiles(env, consenting);
}

/** Wait before rewriting profiles whose refresh failed (KV takes one write per key per second). */
export const REFRESH_RETRY_MS = KV_REWRITE_WAIT_MS;

async function refreshInChunks(env: Env, keys: ProfileKey[], consenting: ProfileKey[]): Promise<{ failed: ProfileKey[]; error: unknown }> {
  const failed: ProfileKey[] = [];
  let error: unknown = null;
  for (let i = 0; i < keys.length; i += REFRESH_CHUNK) {
    const chunk = keys.slice(i, i + REFRESH_CHUNK);
    const refreshed = await refreshProfiles(env, chunk).catch((err: unknown) => {
      failed.push(...chunk);
      error = err;
      return null;
    });
    if (refreshed) {
      failed.push(...refreshed.unwritten);
      error = refreshed.error ?? error;
    }
    consenting.push(...chunk.filter((_, j) => !refreshed || refreshed.profiles[j]!.preferences?.cross_merchant_consent === true));
  }
  return { failed, error };
}

/**
 * A payment here also counts at the other merchants where the customer consented to cross-merchant
 * use: drop their cached profiles so their next /methods reads it (instead of up to the 300 s TTL).
 * Called for customers who consented here only, so a batch without them costs nothing; a failure is
 * logged, the TTL still bounds staleness, as it does for peers past MAX_PEER_DROPS.
 */
async function dropPeerProfiles(env: Env, consenting: readonly ProfileKey[]): Promise<void> {
  try {
    let left = MAX_PEER_DROPS;
    let skipped = 0;
    for (const [merchantId, keys] of Map.groupBy(consenting, (p) => p.merchantId)) {
      const peers = await crossMerchantPeersOf(env.DB, merchantId, keys.map((k) => k.customerRef));
      const dropped = peers.slice(0, left);
      skipped += peers.length - dropped.length;
      left -= dropped.length;
      await Promise.all(dropped.map((p) => invalidateProfile(env, p.merchant_id, p.customer_ref)));
    }
    if (skipped > 0) logEvent("cross-merchant peer profiles left to their cache TTL (KV operations per invocation)", { dropped: MAX_PEER_DROPS, skipped });
  } catch (err) {
    logEvent("dropping cross-merchant peer profiles failed", { error: errorText(err) });
  }
}
