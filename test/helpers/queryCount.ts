import { env } from "cloudflare:test";

/**
 * Counts the D1 queries `run` makes through any binding of this isolate: each statement run alone
 * (run/all/first/raw) is one, each statement of a batch is one, as D1 counts them against its
 * 1,000 queries per Worker invocation (Miniflare does not enforce that limit).
 */
export async function countD1Queries<T>(run: () => Promise<T>): Promise<{ result: T; queries: number }> {
  let queries = 0;
  const dbProto = Object.getPrototypeOf(env.DB) as Record<string, unknown>;
  const stmtProto = Object.getPrototypeOf(env.DB.prepare("SELECT 1")) as Record<string, unknown>;
  const originals: [Record<string, unknown>, string, unknown][] = [];
  const patch = (proto: Record<string, unknown>, name: string, cost: (args: unknown[]) => number) => {
    const original = proto[name] as (...args: unknown[]) => unknown;
    originals.push([proto, name, original]);
    proto[name] = function (this: unknown, ...args: unknown[]) {
      queries += cost(args);
      return original.apply(this, args);
    };
  };
  patch(dbProto, "batch", (args) => (args[0] as unknown[]).length); // batch runs its statements without their methods
  for (const m of ["run", "all", "first", "raw"]) patch(stmtProto, m, () => 1);
  try {
    const result = await run();
    return { result, queries };
  } finally {
    for (const [proto, name, original] of originals) proto[name] = original;
  }
}
