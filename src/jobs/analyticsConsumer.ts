import { analyticsMessageStatement, analyticsMessageTime } from "../analytics/store";
import type { Env } from "../env";
import { AnalyticsMessage } from "../schemas/analytics";
import { errorText, logEvent } from "../log";
import { retryDelaySeconds, sortDelivery } from "./delivery";
import { acceptCutoff } from "./retention";

/**
 * Analytics queue consumer: decisions and offer impressions, written with ONE D1 batch per
 * delivery (every insert is ON CONFLICT DO NOTHING on the row's key, so redelivery adds nothing),
 * acked per message. Poison messages are acked and logged (retrying cannot fix them); a failed D1
 * write retries the valid messages with backoff, then the dead-letter queue takes them.
 */
export async function consumeAnalytics(batch: MessageBatch<unknown>, env: Env, _ctx: ExecutionContext): Promise<void> {
  const started = Date.now();
  const { valid, poison } = sortDelivery(batch, AnalyticsMessage, "poison analytics message dropped");

  // Rows dated before the accept cutoff are not stored (src/analytics/horizons.ts): counted `expired`.
  const cutoff = acceptCutoff(new Date());
  const statements = valid.map((v) => analyticsMessageStatement(env.DB, v.body, cutoff));
  const expired = valid.filter((v) => analyticsMessageTime(v.body) < cutoff).length;
  let results: D1Result[] = [];
  try {
    // An all-poison delivery writes nothing, but still has its line.
    if (statements.length > 0) results = await env.DB.batch(statements);
  } catch (err) {
    logEvent("analytics batch write failed; retrying", { queue: batch.queue, messages: valid.length, error: errorText(err) });
    for (const { msg } of valid) msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts) });
    return;
  }
  for (const { msg } of valid) msg.ack();
  // One statement per message; meta.changes also counts the dirty-hour marks written by triggers, so a
  // message counts as stored when its statement inserted anything (a redelivered one inserts nothing).
  const stored = results.filter((r) => (r.meta.changes ?? 0) > 0).length;
  logEvent("analytics batch stored", {
    queue: batch.queue,
    messages: batch.messages.length,
    decisions: valid.filter((v) => v.body.kind === "decision").length,
    offers_shown: valid.filter((v) => v.body.kind === "offers_shown").length,
    messages_stored: stored,
    duplicates: statements.length - stored - expired,
    expired,
    poison,
    duration_ms: Date.now() - started,
  });
}
