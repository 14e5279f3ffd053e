import { analyticsMessageStatements } from "../analytics/store";
import type { Env } from "../env";
import { AnalyticsMessage } from "../schemas/analytics";
import { retryDelaySeconds } from "./feedbackConsumer";

function log(level: "info" | "warn" | "error", message: string, fields: Record<string, unknown>): void {
  console[level === "info" ? "log" : level](JSON.stringify({ timestamp: new Date().toISOString(), level, message, ...fields }));
}

/**
 * Analytics queue consumer: decisions and offer impressions, written with ONE D1 batch per
 * delivery (every insert is ON CONFLICT DO NOTHING on the row's key, so redelivery adds nothing),
 * acked per message. Poison messages are acked and logged (retrying cannot fix them); a failed D1
 * write retries the valid messages with backoff, then the dead-letter queue takes them.
 */
export async function consumeAnalytics(batch: MessageBatch<unknown>, env: Env, _ctx: ExecutionContext): Promise<void> {
  const started = Date.now();
  const valid: { msg: Message<unknown>; body: AnalyticsMessage }[] = [];
  let poison = 0;
  for (const msg of batch.messages) {
    const parsed = AnalyticsMessage.safeParse(msg.body);
    if (parsed.success) valid.push({ msg, body: parsed.data });
    else {
      poison += 1;
      log("warn", "poison analytics message dropped", { queue: batch.queue, message_id: msg.id, attempts: msg.attempts, issues: parsed.error.issues.map((i) => i.path.join(".") || "(body)").slice(0, 10) });
      msg.ack();
    }
  }
  if (valid.length === 0) return;

  const statements = valid.flatMap((v) => analyticsMessageStatements(env.DB, v.body));
  let results: D1Result[];
  try {
    results = await env.DB.batch(statements);
  } catch (err) {
    log("error", "analytics batch write failed; retrying", { queue: batch.queue, messages: valid.length, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    for (const { msg } of valid) msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts) });
    return;
  }
  for (const { msg } of valid) msg.ack();
  // meta.changes also counts the dirty-hour marks written by triggers: a statement either inserted or not.
  const stored = results.filter((r) => (r.meta.changes ?? 0) > 0).length;
  log("info", "analytics batch stored", {
    queue: batch.queue,
    messages: batch.messages.length,
    decisions: valid.filter((v) => v.body.kind === "decision").length,
    offers_shown: valid.filter((v) => v.body.kind === "offers_shown").length,
    rows_stored: stored,
    duplicates: statements.length - stored,
    poison,
    duration_ms: Date.now() - started,
  });
}
