import type { Env } from "../env";

/** Cron entry point (wrangler*.toml [triggers]): purge, retention and analytics rollups. */
export async function runScheduled(_controller: ScheduledController, _env: Env, _ctx: ExecutionContext): Promise<void> {}
