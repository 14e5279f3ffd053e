import { applyD1Migrations, env } from "cloudflare:test";
import { afterAll, beforeAll } from "vitest";
import { boundValueBytes, D1_LIMITS, utf8Bytes, widestFunctionCall } from "./d1Sql";
import { samples } from "./samples";

// Every test file gets its own storage; the schema comes from the real migrations.
beforeAll(async () => {
  await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
});

// Remote D1 limits Miniflare does not enforce, held in every test (test/helpers/d1Sql.ts): 100 KB
// (100,000 bytes of UTF-8) of SQL, 32 arguments a function call, 100 bound parameters and 2 MB a
// bound value per query. A statement past any of them fails here as it would in production.
{
  const dbProto = Object.getPrototypeOf(env.DB) as { prepare: (sql: string) => unknown; __d1Limits?: true };
  if (!dbProto.__d1Limits) {
    dbProto.__d1Limits = true;
    const checked = new Set<string>();
    const prepare = dbProto.prepare;
    dbProto.prepare = function (this: unknown, sql: string) {
      if (!checked.has(sql)) {
        const bytes = utf8Bytes(sql);
        if (bytes > D1_LIMITS.sqlBytes) throw new Error(`D1 allows 100 KB of SQL per query; this one has ${bytes} bytes`);
        const call = widestFunctionCall(sql);
        if (call !== null && call.args > D1_LIMITS.functionArgs) throw new Error(`D1 allows 32 arguments per SQL function; this statement calls ${call.name}() with ${call.args}`);
        if (checked.size < 10_000) checked.add(sql);
      }
      return prepare.call(this, sql);
    };
    const stmtProto = Object.getPrototypeOf(env.DB.prepare("SELECT 1")) as { bind: (...values: unknown[]) => unknown };
    const bind = stmtProto.bind;
    stmtProto.bind = function (this: unknown, ...values: unknown[]) {
      if (values.length > D1_LIMITS.boundParameters) throw new Error(`D1 allows 100 bound parameters per query; this statement binds ${values.length}`);
      for (const v of values) {
        const bytes = boundValueBytes(v);
        if (bytes !== null && bytes > D1_LIMITS.valueBytes) throw new Error(`D1 allows 2,000,000 bytes per string or BLOB; this statement binds one of ${bytes}`);
      }
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
