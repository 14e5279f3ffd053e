import type { DeadLetterQueue } from "../storage/deadLetters";

/** The consumer of a queue: its own queue family, or the dead-letter consumer of one. */
export type QueueRoute = { consumer: "feedback" } | { consumer: "analytics" } | { consumer: "dead_letters"; of: DeadLetterQueue };

/**
 * Routes a queue name to its consumer. Names carry an environment suffix (feedback-events-dev,
 * -staging, -prod); the dead-letter queues are feedback-events-dlq-* and analytics-events-dlq-*.
 * Pure, so `npm run check:config` can hold every wrangler*.toml queue to it.
 */
export function queueRouteOf(queueName: string): QueueRoute | null {
  if (queueName.startsWith("feedback-events-dlq")) return { consumer: "dead_letters", of: "feedback" };
  if (queueName.startsWith("analytics-events-dlq")) return { consumer: "dead_letters", of: "analytics" };
  if (queueName.startsWith("feedback-events")) return { consumer: "feedback" };
  if (queueName.startsWith("analytics-events")) return { consumer: "analytics" };
  return null;
}
