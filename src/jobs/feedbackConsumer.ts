import type { Env } from "../env";

/** Feedback queue consumer (issue: feedback pipeline). */
export async function consumeFeedback(batch: MessageBatch<unknown>, _env: Env, _ctx: ExecutionContext): Promise<void> {
  batch.ackAll();
}
