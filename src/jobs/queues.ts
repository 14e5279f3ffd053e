import type { Env } from "../env";
import { consumeAnalytics } from "./analyticsConsumer";
import { consumeFeedback } from "./feedbackConsumer";

/**
 * Routes a delivered batch to its consumer by queue name. Names carry an environment suffix
 * (feedback-events-dev, -staging, -prod); dead-letter queues have no consumer and keep their
 * messages for inspection.
 */
export async function handleQueueBatch(batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext): Promise<void> {
  if (batch.queue.startsWith("feedback-events-dlq") || batch.queue.startsWith("analytics-events-dlq")) {
    batch.retryAll();
    return;
  }
  if (batch.queue.startsWith("feedback-events")) return consumeFeedback(batch, env, ctx);
  if (batch.queue.startsWith("analytics-events")) return consumeAnalytics(batch, env, ctx);
  console.error(JSON.stringify({ level: "error", message: "no consumer for queue", queue: batch.queue }));
  batch.retryAll();
}
