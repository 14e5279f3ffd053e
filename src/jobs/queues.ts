import type { Env } from "../env";
import { consumeAnalytics } from "./analyticsConsumer";
import { consumeDeadLetters, deadLetterQueueOf } from "./deadLetterConsumer";
import { consumeFeedback } from "./feedbackConsumer";

/**
 * Routes a delivered batch to its consumer by queue name. Names carry an environment suffix
 * (feedback-events-dev, -staging, -prod). The dead-letter queues (feedback-events-dlq-*,
 * analytics-events-dlq-*) go to the dead-letter consumer, which stores them in D1 for ops.
 */
export async function handleQueueBatch(batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext): Promise<void> {
  const deadLetters = deadLetterQueueOf(batch.queue);
  if (deadLetters) return consumeDeadLetters(batch, env, deadLetters);
  if (batch.queue.startsWith("feedback-events")) return consumeFeedback(batch, env, ctx);
  if (batch.queue.startsWith("analytics-events")) return consumeAnalytics(batch, env, ctx);
  console.error(JSON.stringify({ level: "error", message: "no consumer for queue", queue: batch.queue }));
  batch.retryAll();
}
