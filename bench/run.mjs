// `npm run bench`: scoring micro-benchmark, then the worker under load in fresh local state.
// Results: a Markdown table on stdout and in bench/results/latest.md, JSON in bench/results/latest.json.
// Knobs (env): BENCH_DURATION (s, default 8), BENCH_CONNECTIONS (default 10), BENCH_ONLY (comma list of
// scenario ids), BENCH_SKIP_SCORING=1, BENCH_KEEP_STATE=1 (keep the --persist-to dir), BENCH_SCORING_MS.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { drive } from "./lib/load.mjs";
import { createLogCollector } from "./lib/logs.mjs";
import { machineInfo, machineLine, markdown } from "./lib/report.mjs";
import { BENCH_SECRETS, createBenchMerchant, ingestionEvents } from "./lib/seed.mjs";
import { applyMigrations, createSnapshot, d1Query, ROOT, startLocalWorker } from "../scripts/lib/localWorker.mjs";
import { COMPARISONS, RUNS, SCENARIOS } from "./scenarios.mjs";

const DURATION = Number(process.env.BENCH_DURATION ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(",").map((s) => s.trim())) : null;
const RESULTS_DIR = join(ROOT, "bench", "results");
const MERCHANT_ID = "m_bench";
const INGEST_TIMEOUT_S = Number(process.env.BENCH_INGEST_TIMEOUT ?? 300);

const log = (...args) => console.error("[bench]", ...args);

function runScoring() {
  const out = join(RESULTS_DIR, ".build", "scoring.bench.mjs");
  const esbuild = join(ROOT, "node_modules", ".bin", "esbuild");
  const build = spawnSync(esbuild, ["bench/scoring.bench.ts", "--bundle", "--platform=node", "--format=esm", "--log-level=warning", `--outfile=${out}`], { cwd: ROOT, encoding: "utf8" });
  if (build.status !== 0) return { error: `esbuild failed: ${build.stderr || build.error?.message}` };
  const run = spawnSync(process.execPath, [out], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
  if (run.status !== 0) return { error: `scoring bench failed: ${run.stderr || run.error?.message}` };
  const line = run.stdout.trim().split("\n").pop();
  return JSON.parse(line);
}

async function probeSkipReason(url, probe) {
  const res = await fetch(url + probe.path, { method: probe.method, headers: probe.headers, body: probe.body });
  const text = await res.text();
  if (res.status === 404 && text.includes('"NOT_FOUND"')) return `${probe.method} ${probe.path.split("?")[0]} is not implemented yet (404 NOT_FOUND)`;
  if (res.status >= 500) return `${probe.method} ${probe.path.split("?")[0]} answers ${res.status}: ${text.slice(0, 200)}`;
  return null;
}

function withRequestId(request, requestId) {
  return { ...request, headers: { ...(request.headers ?? {}), "x-request-id": requestId } };
}

async function runHttp(s, ctx) {
  const base = { url: ctx.url, connections: CONNECTIONS };
  const build = (factory, requestId) =>
    factory
      ? { next: ((gen) => (i) => withRequestId(gen(i), requestId))(factory(ctx)) }
      : { request: withRequestId(s.request(ctx), requestId) };
  if (s.warmup) {
    await drive({ ...base, duration: s.warmup, ...build(s.warmupNext ?? s.next, `bench.${s.id}.warmup`) });
  }
  const amount = s.amount?.(ctx);
  const result = await drive({ ...base, ...(amount ? { amount } : { duration: s.duration ?? DURATION }), ...build(s.next, `bench.${s.id}`) });
  if (s.settle) await ctx.logs.waitForQuiet(2500, 90_000);
  return { result };
}

async function runIngestion(s, ctx) {
  const perCustomer = s.events / s.customers;
  const events = ingestionEvents({ customers: s.customers, perCustomer, customerId: (c) => `bc_${c}` });
  const bodies = [];
  for (let i = 0; i < events.length; i += s.batch) bodies.push(JSON.stringify({ events: events.slice(i, i + s.batch) }));
  const headers = { "x-api-key": ctx.secretKey, "content-type": "application/json", "x-request-id": `bench.${s.id}` };
  ctx.logs.resetStored();
  const t0 = performance.now();
  const result = await drive({
    url: ctx.url,
    connections: CONNECTIONS,
    amount: bodies.length,
    next: (i) => ({ method: "POST", path: "/v1/personalize/feedback/batch", headers, body: bodies[i % bodies.length] }),
  });
  const acceptedS = (performance.now() - t0) / 1000;
  log(`  ingestion: ${result.ok}/${bodies.length} batches accepted in ${acceptedS.toFixed(2)} s; waiting for the consumer…`);
  const doneAt = await ctx.logs.waitForHandled(s.events, INGEST_TIMEOUT_S * 1000);
  const waitedS = (performance.now() - t0) / 1000;
  if (doneAt === null) log(`  ingestion: only ${ctx.logs.stored.stored} events stored after ${waitedS.toFixed(0)} s (BENCH_INGEST_TIMEOUT=${INGEST_TIMEOUT_S}); stopping the wait`);
  const storedAfterS = doneAt === null ? null : (doneAt - t0) / 1000;
  ctx.historyCustomers = Array.from({ length: s.customers }, (_, c) => `bc_${c}`);
  await ctx.logs.waitForQuiet(2000, 30_000); // profile refreshes after the last stored batch
  return {
    result,
    ingestion: {
      events: s.events,
      batches: bodies.length,
      accepted_events_per_s: Math.round((result.ok * s.batch) / acceptedS),
      stored_after_s: storedAfterS,
      // On timeout: the rate seen until the wait ended (stored so far / time waited).
      events_per_s: Math.round(storedAfterS === null ? ctx.logs.stored.stored / waitedS : s.events / storedAfterS),
      complete: storedAfterS !== null,
      waited_s: Math.round(waitedS),
      consumer: { ...ctx.logs.stored },
      // Filled in after the worker stops (D1 count).
      rows: null,
      distinct_event_ids: null,
      exactly_once: false,
    },
  };
}

function evaluateGoals(s, floor) {
  if (!s.result || s.floor || !floor?.result) return;
  const r = s.result;
  s.ratio_rps = floor.result.rps ? r.rps / floor.result.rps : null;
  s.ratio_p99 = floor.result.p99_ms ? r.p99_ms / floor.result.p99_ms : null;
  if (!s.goal) return;
  s.goal_status = [];
  if (s.goal.throughput !== undefined && s.ratio_rps !== null) s.goal_status.push({ met: s.ratio_rps >= s.goal.throughput, text: `≥ ${s.goal.throughput}× req/s` });
  if (s.goal.p99 !== undefined && s.ratio_p99 !== null) s.goal_status.push({ met: s.ratio_p99 <= s.goal.p99, text: `p99 ≤ ${s.goal.p99}×` });
  if (s.goal.events_per_s !== undefined && s.ingestion) {
    s.goal_status.push({ met: s.ingestion.events_per_s >= s.goal.events_per_s && s.ingestion.exactly_once, text: `≥ ${s.goal.events_per_s} events/s, zero loss` });
  }
}

async function main() {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const machine = machineInfo();
  log(machineLine(machine));
  const results = {
    started_at: new Date().toISOString(),
    finished_at: null,
    machine,
    config: { duration_s: DURATION, connections: CONNECTIONS, only: ONLY ? [...ONLY] : null },
    scenarios: [],
    comparisons: [],
    scoring: null,
    cache_hit_rate_overall: null,
    worker_errors: [],
  };

  if (process.env.BENCH_SKIP_SCORING !== "1") {
    log("scoring micro-benchmark (node)…");
    results.scoring = runScoring();
  }

  const snapshot = createSnapshot();
  results.source = snapshot;
  log(`worker source snapshot of ${results.source.commit ?? "?"}${results.source.dirty ? " + uncommitted changes" : ""} in ${results.source.dir}`);
  const persistDir = mkdtempSync(join(tmpdir(), "tap2-bench-"));
  log(`fresh local state in ${persistDir}; applying migrations…`);
  applyMigrations(persistDir, { snapshot });

  const ctx = { stamp: Date.now().toString(36), warmCustomers: Array.from({ length: 100 }, (_, c) => `bc_${c}`), historyCustomers: null };
  const record = (s, fields) => {
    const entry = { id: s.id, run: s.run, title: s.title, measures: s.measures, kind: s.kind ?? "http", floor: !!s.floor, goal: s.goal ?? null, ...fields };
    results.scenarios.push(entry);
    return entry;
  };

  try {
    for (const run of RUNS) {
      const scenarios = SCENARIOS.filter((s) => s.run === run.id && (!ONLY || ONLY.has(s.id) || (s.floor && [...ONLY].some((id) => SCENARIOS.find((x) => x.id === id)?.run === run.id))));
      if (scenarios.length === 0) continue;
      const runSkip = run.skip?.() ?? null;
      if (runSkip) {
        log(`run ${run.id}: skipped (${runSkip})`);
        for (const s of scenarios) record(s, { status: "skipped", reason: runSkip });
        continue;
      }
      if (run.wipeKv) rmSync(join(persistDir, "v3", "kv"), { recursive: true, force: true });
      const logs = createLogCollector();
      ctx.logs = logs;
      log(`run ${run.id}: starting wrangler dev (${run.title})…`);
      const worker = await startLocalWorker({
        persistDir,
        snapshot,
        vars: { ...BENCH_SECRETS, ...run.vars },
        onLine: logs.onLine,
        logLevel: process.env.BENCH_WRANGLER_LOG_LEVEL ?? "log",
      });
      ctx.url = worker.baseUrl;
      const entries = [];
      try {
        if (!ctx.secretKey) {
          const m = await createBenchMerchant(worker.baseUrl, MERCHANT_ID);
          ctx.secretKey = m.secretKey;
          log(`  seeded merchant ${MERCHANT_ID} (admin API) with a secret key`);
        }
        for (const s of scenarios) {
          let reason = s.skip?.(ctx) ?? (s.probe ? await probeSkipReason(worker.baseUrl, s.probe(ctx)) : null);
          if (!reason && s.id === "methods-evicted" && !ctx.historyCustomers) reason = "needs the customers seeded by the ingestion scenario, which did not run";
          if (reason) {
            log(`  ${s.id}: skipped (${reason})`);
            entries.push(record(s, { status: "skipped", reason }));
            continue;
          }
          log(`  ${s.id}: ${s.title}…`);
          try {
            const out = s.kind === "ingestion" ? await runIngestion(s, ctx) : await runHttp(s, ctx);
            const entry = record(s, { status: "ok", ...out, loadavg_1m: Math.round(loadavg()[0] * 100) / 100 });
            entries.push(entry);
            const r = out.result;
            log(`    ${r.rps} req/s, p50 ${r.p50_ms} ms, p95 ${r.p95_ms} ms, p99 ${r.p99_ms} ms, statuses ${JSON.stringify(r.statuses)}${r.errors ? `, ${r.errors} errors` : ""}`);
          } catch (err) {
            log(`  ${s.id} failed: ${err.stack ?? err}`);
            entries.push(record(s, { status: "failed", error: String(err.message ?? err) }));
          }
          await sleep(500);
        }
        await sleep(1000); // let the last log lines arrive
      } finally {
        await worker.stop();
      }
      for (const e of entries) {
        const st = logs.stats(`bench.${e.id}`);
        if (!st) continue;
        e.worker_log = { lines: st.lines, statuses: st.statuses, cache: st.cache, fields: st.fields };
        const seen = st.cache.hit + st.cache.miss;
        if (SCENARIOS.find((x) => x.id === e.id)?.cache && seen > 0) e.cache_hit_rate = st.cache.hit / seen;
      }
      results.worker_errors.push(...logs.errors);
      const ing = entries.find((e) => e.kind === "ingestion" && e.status === "ok");
      if (ing) {
        log("  counting the ingested rows in D1 (wrangler d1 execute)…");
        const [row] = d1Query(persistDir, `SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM usage_events WHERE merchant_id = '${MERCHANT_ID}' AND event_id LIKE 'ing_%'`, { snapshot });
        ing.ingestion.rows = row?.n ?? 0;
        ing.ingestion.distinct_event_ids = row?.d ?? 0;
        ing.ingestion.exactly_once = row?.n === ing.ingestion.events && row?.d === ing.ingestion.events;
        log(`    ${row?.n} rows, ${row?.d} distinct event ids`);
      }
    }
  } finally {
    if (process.env.BENCH_KEEP_STATE === "1") log(`state kept in ${persistDir}`);
    else rmSync(persistDir, { recursive: true, force: true });
  }

  const byId = new Map(results.scenarios.map((s) => [s.id, s]));
  for (const s of results.scenarios) evaluateGoals(s, byId.get(`health@${s.run}`));
  for (const c of COMPARISONS) {
    const on = byId.get(c.on);
    const off = byId.get(c.off);
    if (on?.status !== "ok" || off?.status !== "ok") {
      results.comparisons.push({ id: c.id, title: c.title, status: "skipped", reason: `needs ${c.on} and ${c.off}: ${[on, off].filter((x) => x?.status !== "ok").map((x) => x?.reason ?? x?.error ?? "not run").join("; ")}` });
      continue;
    }
    const ratio = on.result.rps / off.result.rps;
    const floorOn = byId.get(`health@${on.run}`)?.result?.rps;
    const floorOff = byId.get(`health@${off.run}`)?.result?.rps;
    results.comparisons.push({
      id: c.id,
      title: c.title,
      status: "ok",
      on_rps: on.result.rps,
      off_rps: off.result.rps,
      ratio,
      ratio_floor_normalized: floorOn && floorOff ? on.result.rps / floorOn / (off.result.rps / floorOff) : null,
      added_p50_ms: on.result.p50_ms - off.result.p50_ms,
      added_p99_ms: on.result.p99_ms - off.result.p99_ms,
      goal: c.goal,
    });
  }
  const cacheLines = results.scenarios.filter((s) => s.worker_log && s.cache_hit_rate !== undefined);
  const hits = cacheLines.reduce((a, s) => a + s.worker_log.cache.hit, 0);
  const seen = cacheLines.reduce((a, s) => a + s.worker_log.cache.hit + s.worker_log.cache.miss, 0);
  results.cache_hit_rate_overall = seen ? hits / seen : null;
  results.cache_lines = seen;
  results.finished_at = new Date().toISOString();

  const md = markdown(results);
  writeFileSync(join(RESULTS_DIR, "latest.md"), md);
  writeFileSync(join(RESULTS_DIR, "latest.json"), JSON.stringify(results, null, 2) + "\n");
  console.log(md);
  log(`written: bench/results/latest.md, bench/results/latest.json`);
}

main().catch((err) => {
  console.error("[bench] failed:", err.stack ?? err);
  process.exit(1); // the exit hook of scripts/lib/localWorker.mjs kills the worker
});
