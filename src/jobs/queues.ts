import type { Env } from "../env";
import { logEvent } from "../log";
import { consumeAnalytics } from "./analyticsConsumer";
import { consumeDeadLetters } from "./deadLetterConsumer";
import { consumeFeedback } from "./feedbackConsumer";
import { queueRouteOf } from "./queueRoutes";

/**
 * Hands a delivered batch to its consumer by queue name (queueRoutes.ts). Dead letters go to the
 * dead-letter consumer, which stores them in D1 for ops.
 */
export async function handleQueueBatch(batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext): Promise<void> {
  const route = queueRouteOf(batch.queue);
  if (route?.consumer === "dead_letters") return consumeDeadLetters(batch, env, route.of);
  if (route?.consumer === "feedback") return consumeFeedback(batch, env, ctx);
  if (route?.consumer === "analytics") return consumeAnalytics(batch, env, ctx);
  logEvent("no consumer for queue", { queue: batch.queue });
  batch.retryAll();
}
