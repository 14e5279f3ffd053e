import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const migrationsDir = fileURLToPath(new URL("./migrations", import.meta.url));

export default defineConfig({
  plugins: [
    cloudflareTest(async () => ({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        // A real D1 database that never gets the migrations: every query fails like a broken D1
        // ("no such table"). Tests swap it in for DB to exercise the degraded and 503 paths.
        d1Databases: { UNMIGRATED_DB: "unmigrated-db" },
        bindings: {
          TEST_MIGRATIONS: await readD1Migrations(migrationsDir),
          ADMIN_TOKEN: "test-admin-token",
          PII_KEY: "test-pii-key-0123456789abcdef0123456789abcdef",
          SIGNING_KEY: "test-signing-key-0123456789abcdef0123456789abcdef",
        },
      },
    })),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["./test/helpers/setup.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    silent: "passed-only",
  },
});
