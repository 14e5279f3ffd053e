import type { D1Migration } from "cloudflare:test";
import type { Env as WorkerEnv } from "../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {
      TEST_MIGRATIONS: D1Migration[];
      /** A real D1 database without the schema: queries fail (see vitest.config.ts). */
      UNMIGRATED_DB: D1Database;
    }
  }
}
