/**
 * `npm run check:config`: holds the three wrangler configs (dev, staging, production) to each other
 * and to the code, as wrangler itself reads them. A binding added to one file only, a queue the
 * worker would not route, a cron the scheduler does not know, or production pointing at a staging
 * resource deploys without complaint and fails at run time; this fails in CI instead.
 * Exit 1 with one line per problem.
 */
import { readFileSync } from "node:fs";
import { unstable_readConfig } from "wrangler";
import { queueRouteOf } from "../../src/jobs/queueRoutes";
import { ANALYTICS_ROLLUP_CRON, DATA_LIFECYCLE_CRON } from "../../src/jobs/scheduled";
import { VISITOR_LIMIT, VISITOR_PERIOD_SECONDS } from "../../src/ratelimit/visitor";

type Config = ReturnType<typeof unstable_readConfig>;

const FILES = { development: "wrangler.toml", staging: "wrangler.staging.toml", production: "wrangler.production.toml" } as const;
type Stage = keyof typeof FILES;
const DEPLOYED: Stage[] = ["staging", "production"];

/** The producer binding of each queue family: what the routes send, and what the consumer must match. */
const PRODUCERS = { FEEDBACK_QUEUE: "feedback", ANALYTICS_QUEUE: "analytics" } as const;
const CRONS = [ANALYTICS_ROLLUP_CRON, DATA_LIFECYCLE_CRON];
/** The Queues maximum: a dead letter must outlive a long D1 outage (docs/feedback.md). */
const DEAD_LETTER_RETRIES = 100;

const problems: string[] = [];
const expect = (ok: boolean, stage: Stage | "all", message: string) => {
  if (!ok) problems.push(`${stage === "all" ? "all configs" : FILES[stage]}: ${message}`);
};
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const sorted = (xs: Iterable<string>) => [...xs].sort();

const configs = Object.fromEntries(
  (Object.keys(FILES) as Stage[]).map((stage) => [stage, unstable_readConfig({ config: FILES[stage] }, { hideWarnings: true })]),
) as Record<Stage, Config>;

/** Binding names by kind: what the Env interface is typed against. */
function bindingsOf(c: Config) {
  return {
    d1: sorted(c.d1_databases.map((d) => d.binding)),
    kv: sorted(c.kv_namespaces.map((k) => k.binding)),
    queues: sorted((c.queues.producers ?? []).map((p) => p.binding)),
    durable_objects: sorted(c.durable_objects.bindings.map((d) => `${d.name}:${d.class_name}`)),
    ratelimits: sorted((c.ratelimits ?? []).map((r) => r.name)),
    assets: c.assets ? [c.assets.binding ?? "", c.assets.directory ?? ""] : [],
    vars: sorted(Object.keys(c.vars)),
  };
}

/** Everything that must be the same in every environment: the code, its bindings, its schedules. */
function shapeOf(c: Config) {
  return {
    main: c.main,
    compatibility_date: c.compatibility_date,
    compatibility_flags: c.compatibility_flags,
    bindings: bindingsOf(c),
    migrations: c.migrations,
    crons: sorted(c.triggers.crons ?? []),
    consumers: (c.queues.consumers ?? []).map((q) => ({
      route: queueRouteOf(q.queue),
      max_batch_size: q.max_batch_size,
      max_retries: q.max_retries,
      dead_letter: q.dead_letter_queue === undefined ? null : queueRouteOf(q.dead_letter_queue),
    })),
  };
}

const dev = configs.development;
for (const stage of Object.keys(FILES) as Stage[]) {
  const c = configs[stage];
  const shape = shapeOf(c);
  const devShape = shapeOf(dev);
  for (const key of Object.keys(shape) as (keyof typeof shape)[]) {
    expect(same(shape[key], devShape[key]), stage, `${key} differs from ${FILES.development}: ${JSON.stringify(shape[key])} vs ${JSON.stringify(devShape[key])}`);
  }

  // Schedules: exactly the crons runScheduled() knows (an unknown one runs nothing).
  expect(same(shape.crons, sorted(CRONS)), stage, `crons ${JSON.stringify(shape.crons)} are not the scheduler's ${JSON.stringify(sorted(CRONS))}`);

  // Queues: every producer is consumed here by its own consumer; every consumer is routed; every
  // dead-letter queue is consumed by the dead-letter consumer of its family, with the maximum retries.
  const consumers = new Map((c.queues.consumers ?? []).map((q) => [q.queue, q]));
  for (const producer of c.queues.producers ?? []) {
    const family = PRODUCERS[producer.binding as keyof typeof PRODUCERS];
    expect(family !== undefined, stage, `queue producer ${producer.binding} is not one the worker sends to`);
    if (family === undefined) continue;
    expect(queueRouteOf(producer.queue)?.consumer === family, stage, `${producer.binding} sends to ${producer.queue}, which the worker would not route to the ${family} consumer`);
    const consumer = consumers.get(producer.queue);
    expect(consumer !== undefined, stage, `nothing consumes ${producer.queue} (${producer.binding})`);
    const dlq = consumer?.dead_letter_queue;
    expect(dlq !== undefined, stage, `${producer.queue} has no dead_letter_queue: a message that fails ${consumer?.max_retries ?? "its"} times is lost`);
    if (dlq === undefined) continue;
    const route = queueRouteOf(dlq);
    expect(route?.consumer === "dead_letters" && route.of === family, stage, `dead-letter queue ${dlq} would not reach the ${family} dead-letter consumer`);
    const dlqConsumer = consumers.get(dlq);
    expect(dlqConsumer !== undefined, stage, `nothing consumes the dead-letter queue ${dlq}: its messages expire unseen`);
    expect(dlqConsumer?.max_retries === DEAD_LETTER_RETRIES, stage, `${dlq} retries ${dlqConsumer?.max_retries}, not ${DEAD_LETTER_RETRIES}`);
    expect(dlqConsumer?.dead_letter_queue === undefined, stage, `${dlq} has a dead-letter queue of its own`);
  }
  for (const q of consumers.keys()) expect(queueRouteOf(q) !== null, stage, `consumer of ${q}: the worker routes no such queue (handleQueueBatch retries it forever)`);

  // Durable Objects: every class is created by a migration, as SQLite-backed.
  const sqliteClasses = new Set(c.migrations.flatMap((m) => m.new_sqlite_classes ?? []));
  for (const d of c.durable_objects.bindings) expect(sqliteClasses.has(d.class_name), stage, `Durable Object class ${d.class_name} has no new_sqlite_classes migration`);

  // The per-visitor limit: the one binding the middleware calls, with the numbers its errors and the OpenAPI document state.
  const visitor = (c.ratelimits ?? []).find((r) => r.name === "VISITOR_LIMITER");
  expect(
    visitor?.simple.limit === VISITOR_LIMIT && visitor.simple.period === VISITOR_PERIOD_SECONDS,
    stage,
    `VISITOR_LIMITER must be simple = { limit = ${VISITOR_LIMIT}, period = ${VISITOR_PERIOD_SECONDS} } (src/ratelimit/visitor.ts), not ${JSON.stringify(visitor?.simple ?? null)}`,
  );

  expect(c.vars.ENVIRONMENT === stage, stage, `ENVIRONMENT is ${JSON.stringify(c.vars.ENVIRONMENT)}, not "${stage}" (the demo and dev-only routes key on it)`);
}

// Deployed environments: the limiter and analytics on, no workers.dev, the demo behind the worker (it
// answers 404 there), no Cloudflare invocation logs (they record full URLs with customer ids), and the
// OpenAPI document's servers URL configured.
for (const stage of DEPLOYED) {
  const c = configs[stage];
  expect(c.vars.RATE_LIMIT_ENABLED === "true", stage, `RATE_LIMIT_ENABLED must be "true" (switching it off is for benchmarks)`);
  expect(c.vars.ANALYTICS_ENABLED === "true", stage, `ANALYTICS_ENABLED must be "true" (switching it off is for benchmarks)`);
  expect(c.workers_dev === false, stage, "workers_dev must be false (the API is served on its own route)");
  expect((c.routes ?? []).length > 0, stage, "no routes: the worker would be unreachable");
  const first = c.assets?.run_worker_first;
  expect(Array.isArray(first) && first.includes("/demo/*"), stage, `assets.run_worker_first must include "/demo/*" (the demo is local-only)`);
  expect(c.observability?.logs?.invocation_logs === false, stage, "observability.logs.invocation_logs must be false (they would log customer ids in URLs)");
  // The OpenAPI document's servers URL: configured (never the request's Host header), https, and the
  // host this environment is routed on (staging's document must not send clients to production).
  const base = c.vars.PUBLIC_BASE_URL;
  const hosts = (c.routes ?? []).map((r) => (typeof r === "string" ? r : r.pattern).split("/")[0]);
  expect(
    typeof base === "string" && /^https:\/\/[a-z0-9.-]+$/.test(base) && hosts.includes(base.slice("https://".length)),
    stage,
    `PUBLIC_BASE_URL ${JSON.stringify(base)} must be https://<host> (no path, no trailing slash) with a host of its routes ${JSON.stringify(hosts)}`,
  );
}
// Development leaves it empty: the document then names a loopback request's own origin (any port:
// npm run dev, the local tools' random ports) or "/", never a fixed address that is wrong on another port.
expect(dev.vars.PUBLIC_BASE_URL === "", "development", `PUBLIC_BASE_URL must be "" (the document follows a loopback origin), not ${JSON.stringify(dev.vars.PUBLIC_BASE_URL)}`);

// No environment may share a resource with another: production writing into staging's queue or
// database would mix their data.
const resources = (c: Config) => [
  `worker ${c.name}`,
  ...c.d1_databases.flatMap((d) => [`D1 ${d.database_name}`, `D1 id ${d.database_id}`]),
  ...c.kv_namespaces.map((k) => `KV id ${k.id}`),
  ...(c.ratelimits ?? []).map((r) => `rate-limit namespace ${r.namespace_id}`),
  ...[...(c.queues.producers ?? []).map((p) => p.queue), ...(c.queues.consumers ?? []).flatMap((q) => [q.queue, q.dead_letter_queue ?? []].flat())].map((q) => `queue ${q}`),
];
const owner = new Map<string, Stage>();
for (const stage of Object.keys(FILES) as Stage[]) {
  for (const r of new Set(resources(configs[stage]))) {
    const other = owner.get(r);
    expect(other === undefined, stage, `${r} is also used by ${other ? FILES[other] : ""}`);
    owner.set(r, stage);
  }
}

// The Env interface (src/env.ts) names exactly the bindings, vars and secrets (.dev.vars.example).
const envText = readFileSync("src/env.ts", "utf8");
const envBody = /export interface Env \{([\s\S]*?)\n\}/.exec(envText)?.[1] ?? "";
const envKeys = sorted([...envBody.matchAll(/^\s{2}([A-Z][A-Z0-9_]*)\??:/gm)].map((m) => m[1] ?? ""));
const secrets = [...readFileSync(".dev.vars.example", "utf8").matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1] ?? "");
const b = bindingsOf(dev);
const declared = sorted(new Set([...b.d1, ...b.kv, ...b.queues, ...b.durable_objects.map((d) => d.split(":")[0] ?? ""), ...b.ratelimits, ...(b.assets[0] ? [b.assets[0]] : []), ...b.vars, ...secrets]));
expect(same(envKeys, declared), "all", `src/env.ts Env has ${JSON.stringify(envKeys)}, the configs and .dev.vars.example ${JSON.stringify(declared)}`);

// The README's one-time setup (its staging example) puts exactly those secrets.
const loop = readFileSync("README.md", "utf8").split("\n").find((l) => l.includes(`wrangler secret put $s -c ${FILES.staging}`));
const put = sorted(/for s in ([A-Z0-9_ ]+);/.exec(loop ?? "")?.[1]?.trim().split(/\s+/) ?? []);
expect(same(put, sorted(secrets)), "staging", `README's "wrangler secret put" loop names ${JSON.stringify(put)}, .dev.vars.example ${JSON.stringify(sorted(secrets))}`);

if (problems.length > 0) {
  console.error(`check:config: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  process.exit(1);
}
console.log(`check:config: ${Object.values(FILES).join(", ")} agree with each other and with the code`);
