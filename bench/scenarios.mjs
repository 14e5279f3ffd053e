// What `npm run bench` measures: worker runs (each a fresh `wrangler dev` over the same persisted
// state, with its own vars) and scenarios (small declarative entries run in order inside their run).
//
// A scenario:
//   id, run, title, measures      names and the sentence docs/benchmarks.md shows
//   probe(ctx)                    a request whose 404 NOT_FOUND means "route not built yet" → skipped
//   request(ctx) | next(ctx)      a fixed request, or a factory of (i) => the i-th request
//   warmup                        seconds of the same load first (not measured, separate request id)
//   duration | amount(ctx)        seconds of load, or a number of requests
//   cache: true                   report the profile cache hit rate from the worker's log lines
//   settle: true                  wait for the feedback consumer to go quiet afterwards
//   goal                          { throughput: x (≥ x × /health req/s), p99: y (≤ y × /health p99) }
//   skip(ctx)                     a reason string to skip, or null
//   kind: "ingestion"             handled by run.mjs (10,000 events → D1, events/s until stored)
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../scripts/lib/localWorker.mjs";

/** The var that switches analytics recording off (issue 9). Not implemented yet → that run is skipped. */
export const ANALYTICS_SWITCH = "ANALYTICS_ENABLED";

function sourceMentions(name) {
  const walk = (dir) =>
    readdirSync(dir, { withFileTypes: true }).some((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith(".ts") && readFileSync(join(dir, e.name), "utf8").includes(name),
    );
  return existsSync(join(ROOT, "src")) && walk(join(ROOT, "src"));
}

export const RUNS = [
  // Ingestion alone: whatever the consumer has not stored when the wait ends is dropped with the
  // worker (local queues live in memory), so it cannot leak into the latency scenarios.
  { id: "ingest", title: "rate limiter on; ingestion only", vars: { RATE_LIMIT_ENABLED: "true" } },
  { id: "main", title: "rate limiter on (production configuration)", vars: { RATE_LIMIT_ENABLED: "true" } },
  {
    id: "evicted",
    title: "rate limiter on; the KV state (profile cache) deleted before start, D1 kept",
    vars: { RATE_LIMIT_ENABLED: "true" },
    wipeKv: true,
  },
  { id: "limiter-off", title: "rate limiter off (RATE_LIMIT_ENABLED=false)", vars: { RATE_LIMIT_ENABLED: "false" } },
  {
    id: "analytics-off",
    title: `analytics recording off (${ANALYTICS_SWITCH}=false)`,
    vars: { RATE_LIMIT_ENABLED: "true", [ANALYTICS_SWITCH]: "false" },
    skip: () => (sourceMentions(ANALYTICS_SWITCH) ? null : `analytics recording (issue 9) has no ${ANALYTICS_SWITCH} switch in src/ yet`),
  },
];

const CONTEXT = "device_type=mobile&country=US&amount=4999&currency=USD";
const auth = (ctx) => ({ "x-api-key": ctx.secretKey });
const methodsPath = (customerId) => `/v1/personalize/methods?customer_id=${encodeURIComponent(customerId)}&${CONTEXT}`;
const methodsProbe = (ctx) => ({ method: "GET", path: methodsPath("probe_customer"), headers: auth(ctx) });
const health = (run, duration) => ({
  id: `health@${run}`,
  run,
  floor: true,
  title: "GET /health (floor)",
  measures: "The runtime floor: routing, middleware and a JSON body, no storage. Every ratio divides by the floor of the same worker run.",
  warmup: 2,
  duration,
  request: () => ({ method: "GET", path: "/health" }),
});
const warm = (ctx) => (i) => ({ method: "GET", path: methodsPath(ctx.warmCustomers[i % ctx.warmCustomers.length]), headers: auth(ctx) });
const neverSeen = (prefix) => (ctx) => (i) => ({ method: "GET", path: methodsPath(`${prefix}_${ctx.stamp}_${i}`), headers: auth(ctx) });

export const SCENARIOS = [
  health("ingest", 5),
  {
    id: "ingestion",
    run: "ingest",
    kind: "ingestion",
    title: "Ingestion: 10,000 events, POST /feedback/batch × 100",
    measures:
      "10,000 payments (2,500 customers × 4) posted as 100 batches of 100 over 10 connections; events/s from the first request until the queue consumer has stored the last one (its log lines), then count(*) = count(DISTINCT event_id) = 10,000 in D1.",
    probe: (ctx) => ({ method: "POST", path: "/v1/personalize/feedback/batch", headers: { ...auth(ctx), "content-type": "application/json" }, body: "{}" }),
    events: 10_000,
    customers: 2_500,
    batch: 100,
    goal: { events_per_s: 1_000 },
  },
  health("main"),
  {
    id: "methods-warm",
    run: "main",
    title: "GET /methods, warm profile cache",
    measures: "100 customers with history (seeded above), requested round-robin: after the warm-up every profile read is a KV hit; scoring runs on every request.",
    probe: methodsProbe,
    warmup: 2,
    next: warm,
    cache: true,
    goal: { throughput: 0.8, p99: 2 },
  },
  {
    id: "methods-cold",
    run: "main",
    title: "GET /methods, cold cache (never-seen customers)",
    measures: "A new customer id on every request: KV miss, then the D1 profile read (one batch of 5 statements), the KV write and its version check (one D1 query; both in waitUntil); answer is the no_history fallback.",
    probe: methodsProbe,
    next: neverSeen("new"),
    cache: true,
    goal: { throughput: 0.5 },
  },
  {
    id: "preferences-put",
    run: "main",
    title: "PUT /preferences",
    measures: "500 customers' preferences rewritten in turn (favourite + default): D1 upsert, consent check, profile refresh into KV.",
    probe: (ctx) => ({ method: "GET", path: "/v1/personalize/preferences?customer_id=probe_customer", headers: auth(ctx) }),
    next: (ctx) => (i) => ({
      method: "PUT",
      path: "/v1/personalize/preferences",
      headers: { ...auth(ctx), "content-type": "application/json" },
      body: JSON.stringify({ customer_id: `pref_${i % 500}`, favorite_methods: [i % 2 ? "apple_pay" : "paypal"], default_method: i % 2 ? "visa" : "mastercard" }),
    }),
  },
  {
    id: "feedback",
    run: "main",
    title: "POST /feedback (single event)",
    measures: "One payment per request (distinct event ids, 500 customers): validation, pseudonym, queue send; the consumer's D1 writes follow in the background (the next scenario waits for them).",
    probe: (ctx) => ({ method: "POST", path: "/v1/personalize/feedback", headers: { ...auth(ctx), "content-type": "application/json" }, body: "{}" }),
    next: (ctx) => (i) => ({
      method: "POST",
      path: "/v1/personalize/feedback",
      headers: { ...auth(ctx), "content-type": "application/json" },
      body: JSON.stringify({ customer_id: `fb_${i % 500}`, method_id: ["visa", "apple_pay", "paypal", "klarna"][i % 4], amount: 4999, currency: "USD", device_type: "mobile", event_id: `fb_${ctx.stamp}_${i}` }),
    }),
    settle: true,
  },
  health("evicted", 5),
  {
    id: "methods-evicted",
    run: "evicted",
    title: "GET /methods, cold cache (customers with history, cache evicted)",
    measures:
      "Each of the 2,500 customers seeded by the ingestion scenario once, after the worker restarted with its KV state deleted: KV miss, D1 read of a real profile (stats rows), KV write. Warm-up: 2 s of never-seen customers (JIT), not measured.",
    probe: methodsProbe,
    warmupNext: neverSeen("evictwarm"),
    warmup: 2,
    amount: (ctx) => ctx.historyCustomers.length,
    next: (ctx) => (i) => ({ method: "GET", path: methodsPath(ctx.historyCustomers[i % ctx.historyCustomers.length]), headers: auth(ctx) }),
    cache: true,
    goal: { throughput: 0.5 },
  },
  health("limiter-off", 5),
  {
    id: "methods-warm-nolimit",
    run: "limiter-off",
    title: "GET /methods, warm, rate limiter off",
    measures: "The warm scenario again with RATE_LIMIT_ENABLED=false: no Durable Object round trip. Compared with methods-warm for the limiter's cost.",
    probe: methodsProbe,
    warmup: 2,
    next: warm,
    cache: true,
  },
  {
    id: "methods-cold-nolimit",
    run: "limiter-off",
    title: "GET /methods, cold (never-seen), rate limiter off",
    measures: "The never-seen scenario again without the limiter.",
    probe: methodsProbe,
    next: neverSeen("newoff"),
    cache: true,
  },
  health("analytics-off", 5),
  {
    id: "methods-warm-noanalytics",
    run: "analytics-off",
    title: "GET /methods, warm, analytics recording off",
    measures: "The warm scenario with decisions not recorded; compared with methods-warm (goal: on ≥ 0.95 × off).",
    probe: methodsProbe,
    warmup: 2,
    next: warm,
    cache: true,
  },
];

/** Ratios between scenarios (computed after the runs; missing inputs → skipped). */
export const COMPARISONS = [
  { id: "limiter", title: "Rate limiter on / off, warm /methods (throughput)", on: "methods-warm", off: "methods-warm-nolimit", goal: null },
  { id: "limiter-cold", title: "Rate limiter on / off, never-seen /methods (throughput)", on: "methods-cold", off: "methods-cold-nolimit", goal: null },
  { id: "analytics", title: "Analytics on / off, warm /methods (throughput)", on: "methods-warm", off: "methods-warm-noanalytics", goal: 0.95 },
];
