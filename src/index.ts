import { createApp } from "./app";
import type { Env } from "./env";
import { handleQueueBatch } from "./jobs/queues";
import { runScheduled } from "./jobs/scheduled";

export { RateLimiter } from "./ratelimit/durableObject";

const app = createApp();

export default {
  fetch: app.fetch,
  queue: (batch, env, ctx) => handleQueueBatch(batch, env, ctx),
  scheduled: (controller, env, ctx) => runScheduled(controller, env, ctx),
} satisfies ExportedHandler<Env>;
