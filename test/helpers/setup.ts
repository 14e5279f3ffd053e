import { applyD1Migrations, env } from "cloudflare:test";
import { afterAll, beforeAll } from "vitest";
import { samples } from "./samples";

// Every test file gets its own storage; the schema comes from the real migrations.
beforeAll(async () => {
  await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
});

// D1 limits Miniflare does not enforce, held in every test: 100 bound parameters and 100 KB of SQL
// per query. A statement past either fails here as it would in production.
{
  const dbProto = Object.getPrototypeOf(env.DB) as { prepare: (sql: string) => unknown; __d1Limits?: true };
  if (!dbProto.__d1Limits) {
    dbProto.__d1Limits = true;
    const prepare = dbProto.prepare;
    dbProto.prepare = function (this: unknown, sql: string) {
      if (sql.length > 100_000) throw new Error(`D1 allows 100 KB of SQL per query; this one has ${sql.length} characters`);
      return prepare.call(this, sql);
    };
    const stmtProto = Object.getPrototypeOf(env.DB.prepare("SELECT 1")) as { bind: (...values: unknown[]) => unknown };
    const bind = stmtProto.bind;
    stmtProto.bind = function (this: unknown, ...values: unknown[]) {
      if (values.length > 100) throw new Error(`D1 allows 100 bound parameters per query; this statement binds ${values.length}`);
      return bind.apply(this, values);
    };
  }
}

// Every answer the shared fixtures recorded in this file must match the OpenAPI document (issue 11).
afterAll(async () => {
  if (samples.length === 0) return;
  const { checkSamples } = await import("./contract");
  const { problems } = await checkSamples(samples);
  if (problems.length > 0) {
    throw new Error(`${problems.length} answer(s) do not match the OpenAPI document:\n  ${[...new Set(problems)].slice(0, 40).join("\n  ")}`);
  }
});
