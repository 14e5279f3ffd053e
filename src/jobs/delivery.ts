import type { z } from "zod";
import { logEvent } from "../log";

/** The line a consumer writes for each poison message it drops (one event per queue, src/log.ts). */
export type PoisonEvent = "poison feedback message dropped" | "poison analytics message dropped";

/** What both queue consumers share: backoff, and sorting a delivery into valid and poison. */

/** Backoff for a failed D1 write: 10 s, 30 s, 90 s, 270 s, 810 s (max_retries = 5, then the DLQ). */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(900, 10 * 3 ** Math.max(0, attempts - 1));
}

/**
 * Backoff of the dead-letter consumers, which have nothing behind them: 1 min doubling to 3 h, so
 * their 100 retries span ~12 days of D1 outage — inside the 14-day message retention the deploy
 * steps give the dead-letter queues.
 */
/** max_retries of the dead-letter consumers (wrangler*.toml; 100 is the Queues maximum): past it the platform discards a retried message. */
export const DEAD_LETTER_MAX_RETRIES = 100;

export function deadLetterRetryDelaySeconds(attempts: number): number {
  return Math.min(10_800, 60 * 2 ** Math.max(0, attempts - 1));
}

/**
 * Parses every message of a delivery. Poison (a body the schema rejects) is acked and logged by id
 * and failing field paths, never by body (it may hold anything, a raw customer id included):
 * retrying cannot fix it, and it must not block its neighbours.
 */
export function sortDelivery<S extends z.ZodType>(batch: MessageBatch<unknown>, schema: S, poisonEvent: PoisonEvent): { valid: { msg: Message<unknown>; body: z.infer<S> }[]; poison: number } {
  const valid: { msg: Message<unknown>; body: z.infer<S> }[] = [];
  let poison = 0;
  for (const msg of batch.messages) {
    const parsed = schema.safeParse(msg.body);
    if (parsed.success) valid.push({ msg, body: parsed.data as z.infer<S> });
    else {
      poison += 1;
      logEvent(poisonEvent, {
        queue: batch.queue,
        message_id: msg.id,
        attempts: msg.attempts,
        issues: parsed.error.issues.map((i) => i.path.join(".") || "(body)").slice(0, 10),
      });
      msg.ack();
    }
  }
  return { valid, poison };
}
