// Scoring micro-benchmark (tinybench, under Node). bench/run.mjs bundles this file with esbuild and
// runs it in a child `node`; it prints one JSON line: {"tasks":[{name, methods, hz, mean_us, p99_us, rme, samples}]}.
// Standalone: npx esbuild bench/scoring.bench.ts --bundle --platform=node --format=esm --outfile=/tmp/s.mjs && node /tmp/s.mjs
import { Bench } from "tinybench";
import { CATALOG } from "../src/catalog/methods";
import { bucketKey } from "../src/personalization/buckets";
import { resolveContext } from "../src/personalization/context";
import { populationPrior, type PopularityRow } from "../src/personalization/prior";
import { rankForCustomer, type RankingProfile } from "../src/personalization/ranking";
import { recencyRef } from "../src/personalization/recency";
import { scoreMethods, type ScoringInput, type UsageStat } from "../src/personalization/scoring";
import { resolveWeights } from "../src/personalization/weights";

const NOW = Date.UTC(2026, 10, 20, 18, 0, 0);
const DAY = 24 * 3600 * 1000;

/** Methods available everywhere come first so that a US / USD / mobile context keeps most of them. */
function enabledMethods(n: number): string[] {
  const ids = CATALOG.map((m) => m.id);
  const anywhere = CATALOG.filter((m) => m.countries === "*" && m.currencies === "*").map((m) => m.id);
  const ordered = [...anywhere, ...ids.filter((id) => !anywhere.includes(id))];
  if (ordered.length < n) throw new Error(`the catalog has ${ordered.length} methods, fewer than ${n}`);
  return ordered.slice(0, n);
}

/** A regular customer: paid with up to 5 of the methods, in every bucket its payments touched. */
function customerStats(methods: readonly string[]): UsageStat[] {
  const used = methods.slice(0, Math.min(5, methods.length));
  const buckets = [bucketKey.all, bucketKey.device("mobile"), bucketKey.device("desktop"), bucketKey.amount(1), bucketKey.amount(2), bucketKey.country("US")];
  const stats: UsageStat[] = [];
  used.forEach((method_id, i) => {
    for (const bucket of buckets) {
      const events = Math.max(1, 6 - i);
      let weight_ref = 0;
      for (let k = 0; k < events; k++) weight_ref += recencyRef(NOW - (k * 9 + i) * DAY);
      stats.push({ bucket, method_id, weight_ref });
    }
  });
  return stats;
}

function popularity(methods: readonly string[]): PopularityRow[] {
  const segments = ["*", "country:US", "country:US|device:mobile"];
  return segments.flatMap((segment) => methods.map((method_id, i) => ({ segment, method_id, uses: 100 - i, weight_ref: (100 - i) * recencyRef(NOW - 10 * DAY) })));
}

function scoringInput(n: number): ScoringInput {
  const candidates = enabledMethods(n);
  const weights = resolveWeights({});
  const context = { device_type: "mobile" as const, country: "US", amount_band: 1 };
  return {
    candidates,
    prior: populationPrior(candidates, popularity(candidates), context, weights, NOW),
    stats: customerStats(candidates),
    cross: [],
    preferences: { default_method: null, favorite_methods: [candidates[2]!] },
    context,
    weights,
    nowMs: NOW,
  };
}

function rankingInput(n: number) {
  const methods = enabledMethods(n);
  const profile: RankingProfile = {
    preferences: { default_method: null, favorite_methods: [methods[2]!], excluded_methods: [], personalization_enabled: true },
    stats: customerStats(methods),
    cross_merchant: [],
    pending_deletion: false,
  };
  return {
    merchant: { merchant_id: "m_bench", methods, holdout_percent: 0, scoring_weights: {} },
    customerRef: "c_bench_customer_reference_0000000000000",
    profile,
    popularity: popularity(methods),
    context: resolveContext({ device_type: "mobile", country: "US", amount: 4999, currency: "USD", timezone: "America/New_York" }, {}, NOW),
    nowMs: NOW,
  };
}

const time = Number(process.env.BENCH_SCORING_MS ?? 1500);
const bench = new Bench({ time, warmup: true, warmupTime: 300 });
const inputs: Record<number, ScoringInput> = { 8: scoringInput(8), 30: scoringInput(30) };
const rankings = { 8: rankingInput(8), 30: rankingInput(30) };
let sink = 0;
for (const n of [8, 30] as const) {
  bench.add(`scoreMethods, ${n} methods`, () => {
    sink += scoreMethods(inputs[n]!).length;
  });
}
for (const n of [8, 30] as const) {
  bench.add(`rankForCustomer, ${n} enabled`, () => {
    sink += rankForCustomer(rankings[n]!).methods.length;
  });
}
await bench.run();

const tasks = bench.tasks.map((task) => {
  const r = task.result as unknown as {
    throughput?: { mean: number };
    latency?: { mean: number; p99?: number; rme: number; samplesCount?: number; samples?: number[] };
    hz?: number;
    mean?: number;
    p99?: number;
    rme?: number;
  };
  const meanMs = r.latency?.mean ?? r.mean ?? NaN;
  return {
    name: task.name,
    methods: Number(/(\d+) (methods|enabled)/.exec(task.name)?.[1]),
    candidates: task.name.startsWith("rankForCustomer") ? undefined : inputs[Number(/(\d+)/.exec(task.name)?.[1])]!.candidates.length,
    // Calls per second of wall time (1 / mean latency). tinybench's throughput.mean averages 1/latency
    // per sample, which overstates it when a few samples are slow; kept for reference.
    hz: 1000 / meanMs,
    hz_sample_mean: r.throughput?.mean ?? r.hz ?? null,
    mean_us: meanMs * 1000,
    p99_us: (r.latency?.p99 ?? r.p99 ?? NaN) * 1000,
    rme: r.latency?.rme ?? r.rme ?? NaN,
    samples: r.latency?.samplesCount ?? r.latency?.samples?.length ?? null,
  };
});
// The same calls per CPU-second of this process (process.cpuUsage): robust to other processes
// competing for the cores, which wall-clock rates on a shared machine are not.
const calls: Record<string, () => unknown> = {
  "scoreMethods, 8 methods": () => scoreMethods(inputs[8]!),
  "scoreMethods, 30 methods": () => scoreMethods(inputs[30]!),
  "rankForCustomer, 8 enabled": () => rankForCustomer(rankings[8]),
  "rankForCustomer, 30 enabled": () => rankForCustomer(rankings[30]),
};
for (const task of tasks) {
  const fn = calls[task.name]!;
  let n = 0;
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  while (performance.now() - wall0 < time / 2) {
    for (let k = 0; k < 1000; k++) fn();
    n += 1000;
  }
  const cpu = process.cpuUsage(cpu0);
  (task as Record<string, unknown>).cpu_hz = n / ((cpu.user + cpu.system) / 1e6);
}
console.log(JSON.stringify({ tasks, sink: sink > 0 }));
