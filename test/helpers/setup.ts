import { applyD1Migrations, env } from "cloudflare:test";
import { afterAll, beforeAll } from "vitest";
import { samples } from "./samples";

// Every test file gets its own storage; the schema comes from the real migrations.
beforeAll(async () => {
  await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
});

// Every answer the shared fixtures recorded in this file must match the OpenAPI document (issue 11).
afterAll(async () => {
  if (samples.length === 0) return;
  const { checkSamples } = await import("./contract");
  const { problems } = await checkSamples(samples);
  if (problems.length > 0) {
    throw new Error(`${problems.length} answer(s) do not match the OpenAPI document:\n  ${[...new Set(problems)].slice(0, 40).join("\n  ")}`);
  }
});
