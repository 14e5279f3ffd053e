import type { Env } from "../env";

/** Analytics queue consumer (issue: analytics). */
export async function consumeAnalytics(batch: MessageBatch<unknown>, _env: Env, _ctx: ExecutionContext): Promise<void> {
  batch.ackAll();
}
