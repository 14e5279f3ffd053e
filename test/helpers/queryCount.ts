import { env } from "cloudflare:test";

type Method = (this: unknown, ...args: unknown[]) => unknown;

/** The D1 methods that run SQL: a database's `batch` and `exec`, a statement's `run`, `all`, `first`, `raw`. */
const RUNNERS = { db: ["batch", "exec"], statement: ["run", "all", "first", "raw"] } as const;

/**
 * Replaces every D1 method that runs SQL, on the bindings' prototypes (so the worker's own calls go
 * through it too), with `wrap(name, original)`; returns the function that puts the originals back.
 */
export function patchD1(wrap: (name: string, original: Method) => Method): () => void {
  const protos = {
    db: Object.getPrototypeOf(env.DB) as Record<string, Method>,
    statement: Object.getPrototypeOf(env.DB.prepare("SELECT 1")) as Record<string, Method>,
  };
  const saved: [Record<string, Method>, string, Method][] = [];
  for (const kind of ["db", "statement"] as const) {
    for (const name of RUNNERS[kind]) {
      const original = protos[kind][name]!;
      saved.push([protos[kind], name, original]);
      protos[kind][name] = wrap(name, original);
    }
  }
  return () => {
    for (const [proto, name, original] of saved) proto[name] = original;
  };
}

/**
 * Counts the D1 queries `run` makes through any binding of this isolate: each statement run alone
 * (run/all/first/raw) is one, each statement of a batch is one, as D1 counts them against its
 * 1,000 queries per Worker invocation (Miniflare does not enforce that limit).
 */
export async function countD1Queries<T>(run: () => Promise<T>): Promise<{ result: T; queries: number }> {
  let queries = 0;
  const restore = patchD1((name, original) =>
    function (this: unknown, ...args: unknown[]) {
      // batch runs its statements without their methods; exec is not used by the worker.
      queries += name === "batch" ? (args[0] as unknown[]).length : name === "exec" ? 0 : 1;
      return original.apply(this, args);
    },
  );
  try {
    const result = await run();
    return { result, queries };
  } finally {
    restore();
  }
}
