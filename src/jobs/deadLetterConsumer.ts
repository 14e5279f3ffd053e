import type { Env } from "../env";
import { MerchantId } from "../schemas/common";
import { type DeadLetterQueue, insertDeadLetters, type NewDeadLetter } from "../storage/deadLetters";
import { errorText, logEvent } from "../log";
import { DEAD_LETTER_MAX_RETRIES, deadLetterRetryDelaySeconds } from "./delivery";

/** Bodies are kept up to 64 KB of JSON text; ours are far smaller (a longer one is cut and flagged). */
export const MAX_BODY_CHARS = 64 * 1024;

/** The body as JSON text, cut at MAX_BODY_CHARS; `truncated` when it is not the whole original. */
export function bodyText(body: unknown): { text: string; truncated: boolean } {
  let text: string | undefined;
  try {
    text = JSON.stringify(body);
  } catch {
    text = undefined;
  }
  if (text === undefined) return { text: JSON.stringify(`(a ${typeof body} body that is not JSON-serializable)`), truncated: true };
  if (text.length > MAX_BODY_CHARS) return { text: text.slice(0, MAX_BODY_CHARS), truncated: true };
  return { text, truncated: false };
}

/** One row per message, valid or not: a poison body is evidence too. Only the pseudonym is copied out (for the purge). */
export function toDeadLetter(queue: DeadLetterQueue, msg: Message<unknown>, receivedAt: string): NewDeadLetter {
  const fields = msg.body !== null && typeof msg.body === "object" ? (msg.body as Record<string, unknown>) : {};
  const merchantId = MerchantId.safeParse(fields.merchant_id);
  const ref = fields.customer_ref;
  const madeAt = [fields.received_at, fields.issued_at, fields.shown_at].find((t): t is string => typeof t === "string" && Number.isFinite(Date.parse(t)));
  const { text, truncated } = bodyText(msg.body);
  return {
    queue,
    message_id: msg.id,
    merchant_id: merchantId.success ? merchantId.data : null,
    customer_ref: typeof ref === "string" && ref.length > 0 && ref.length <= 128 ? ref : null,
    body: text,
    truncated,
    attempts: msg.attempts,
    received_at: receivedAt,
    made_at: madeAt ? new Date(Date.parse(madeAt)).toISOString() : null,
  };
}

/**
 * Dead-letter queue consumer: every message of the delivery is stored in D1 with ONE batch (a
 * message id stored before is skipped), and acked only after that batch commits. If D1 fails the
 * whole delivery retries with backoff: a dead letter is never acked before it is stored.
 */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env, queue: DeadLetterQueue): Promise<void> {
  const started = Date.now();
  const receivedAt = new Date().toISOString();
  const letters = batch.messages.map((msg) => toDeadLetter(queue, msg, receivedAt));
  let stored: number;
  let erased: number;
  try {
    ({ stored, erased } = await insertDeadLetters(env.DB, letters));
  } catch (err) {
    retryOrLose(batch, err);
    return;
  }
  for (const msg of batch.messages) msg.ack();
  // warn: every dead letter is accepted data not yet applied; ops re-drive it (docs/feedback.md).
  logEvent("dead letters stored", {
    queue: batch.queue,
    original_queue: queue,
    messages: batch.messages.length,
    stored,
    // A message id stored before, or a feedback event already stored (nothing to re-drive).
    duplicates: batch.messages.length - stored - erased,
    // Of customers erased after their data was accepted: dropped, as the feedback consumer drops them.
    dropped_purged: erased,
    truncated: letters.filter((l) => l.truncated).length,
    duration_ms: Date.now() - started,
  });
}

/**
 * Every message retries; one on its last attempt (the first delivery and DEAD_LETTER_MAX_RETRIES
 * retries) has no queue behind it, so the platform discards it: that is logged as lost, not retrying.
 */
function retryOrLose(batch: MessageBatch<unknown>, err: unknown): void {
  const lost = batch.messages.filter((msg) => msg.attempts > DEAD_LETTER_MAX_RETRIES);
  const retrying = batch.messages.length - lost.length;
  if (retrying > 0) logEvent("dead letter write failed; retrying", { queue: batch.queue, messages: retrying, error: errorText(err) });
  if (lost.length > 0) {
    logEvent("dead letters lost", { queue: batch.queue, metric: "dead_letters_lost", messages: lost.length, message_ids: lost.map((m) => m.id), error: errorText(err) });
  }
  for (const msg of batch.messages) msg.retry({ delaySeconds: deadLetterRetryDelaySeconds(msg.attempts) });
}
