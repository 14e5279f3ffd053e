import { applyD1Migrations, env } from "cloudflare:test";
import { beforeAll } from "vitest";

// Every test file gets its own storage; the schema comes from the real migrations.
beforeAll(async () => {
  await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
});
