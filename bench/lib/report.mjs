// Markdown table + JSON of a bench run.
import { execSync } from "node:child_process";
import { cpus, loadavg, release, totalmem } from "node:os";

export function machineInfo() {
  let cpu = cpus()[0]?.model?.trim() ?? "unknown CPU";
  try {
    const lscpu = execSync("lscpu", { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const name = /^Model name:\s*(.+)$/m.exec(lscpu)?.[1]?.trim();
    if (name && name.length > cpu.length) cpu = name;
  } catch {
    /* lscpu is optional */
  }
  let wrangler = null;
  try {
    wrangler = JSON.parse(execSync("npm ls wrangler --json --depth=0", { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })).dependencies?.wrangler?.version ?? null;
  } catch {
    /* optional */
  }
  return {
    node: process.version,
    cpu,
    cores: cpus().length,
    memory_gb: Math.round(totalmem() / 2 ** 30),
    os: `${process.platform} ${release()}`,
    wrangler,
    loadavg_at_start: loadavg().map((v) => Math.round(v * 100) / 100),
  };
}

export const machineLine = (m) =>
  `Node ${m.node} · ${m.cpu} × ${m.cores} cores · ${m.memory_gb} GB · ${m.os} · wrangler ${m.wrangler ?? "?"} · load average at start ${m.loadavg_at_start.join(" / ")}`;

const fmt = (v, digits = 0) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const ratio = (v) => (v === null || v === undefined ? "–" : `${v.toFixed(2)}×`);
const pct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)} %`);

function goalText(s) {
  if (!s.goal || !s.goal_status) return "";
  return s.goal_status.map((g) => `${g.met ? "✅" : "❌"} ${g.text}`).join("; ");
}

export function markdown(results) {
  const out = [];
  out.push(`### Tap2 Personalize bench — ${results.finished_at}`);
  out.push("");
  out.push(`Machine: ${machineLine(results.machine)}`);
  if (results.source) out.push(`Worker: commit ${results.source.commit ?? "?"}${results.source.dirty ? " with uncommitted changes" : ""} (snapshot copied at start).`);
  out.push(`Load: ${results.config.connections} connections, ${results.config.duration_s} s per scenario after warm-up, loopback (wrangler dev / workerd, local D1, KV, Queues, Durable Objects).`);
  out.push("");
  out.push("| Scenario | run | req/s | p50 ms | p95 ms | p99 ms | req/s ÷ /health | p99 ÷ /health | cache hit | non-2xx | goal |");
  out.push("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
  for (const s of results.scenarios) {
    if (s.status === "skipped") {
      out.push(`| ${s.title} | ${s.run} | skipped: ${s.reason} | | | | | | | | |`);
      continue;
    }
    if (s.status === "failed") {
      out.push(`| ${s.title} | ${s.run} | failed: ${String(s.error).split("\n")[0].slice(0, 160)} | | | | | | | | |`);
      continue;
    }
    const r = s.result;
    const non2xx = r.requests - r.ok + (r.errors ?? 0);
    const title = s.kind === "ingestion" ? `${s.title} (batch requests)` : s.title;
    out.push(
      `| ${title} | ${s.run} | ${fmt(r.rps)} | ${fmt(r.p50_ms, 1)} | ${fmt(r.p95_ms, 1)} | ${fmt(r.p99_ms, 1)} | ${s.floor ? "floor" : ratio(s.ratio_rps)} | ${s.floor ? "floor" : ratio(s.ratio_p99)} | ${s.cache_hit_rate === undefined ? "" : pct(s.cache_hit_rate)} | ${non2xx} | ${goalText(s)} |`,
    );
  }
  const ing = results.scenarios.find((s) => s.kind === "ingestion" && s.status === "ok");
  if (ing) {
    const i = ing.ingestion;
    out.push("");
    if (!i.complete) {
      out.push(
        `**Ingestion:** incomplete — ${fmt(i.consumer.stored)} of ${fmt(i.events)} events stored when the wait ended after ${fmt(i.waited_s)} s = **${fmt(i.events_per_s)} events/s** ` +
          `(HTTP acceptance ${fmt(i.accepted_events_per_s)} events/s). D1 after stopping the worker: ${fmt(i.rows)} rows, ${fmt(i.distinct_event_ids)} distinct event ids ` +
          `(${i.rows === i.distinct_event_ids ? "no duplicates" : "❌ DUPLICATES"}; the rest was still queued, not lost as far as this run can tell); goal ≥ 1,000 events/s ❌.`,
      );
    } else out.push(
      `**Ingestion:** ${fmt(i.events)} events in ${fmt(i.stored_after_s, 2)} s from the first request to the last stored row = **${fmt(i.events_per_s)} events/s** ` +
        `(HTTP acceptance ${fmt(i.accepted_events_per_s)} events/s). D1: ${fmt(i.rows)} rows, ${fmt(i.distinct_event_ids)} distinct event ids → ` +
        `${i.exactly_once ? "✅ every event stored exactly once" : "❌ NOT exactly once"}; goal ≥ 1,000 events/s ${i.events_per_s >= 1000 ? "✅" : "❌"}.`,
    );
  }
  if (results.comparisons.length > 0) {
    out.push("");
    out.push("| Comparison | on req/s | off req/s | on ÷ off | on ÷ off, each ÷ its run's /health | added p50 / p99 ms | goal |");
    out.push("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    for (const c of results.comparisons) {
      if (c.status !== "ok") {
        out.push(`| ${c.title} | skipped: ${c.reason} | | | | | |`);
        continue;
      }
      out.push(
        `| ${c.title} | ${fmt(c.on_rps)} | ${fmt(c.off_rps)} | ${ratio(c.ratio)} | ${ratio(c.ratio_floor_normalized)} | ${fmt(c.added_p50_ms, 1)} / ${fmt(c.added_p99_ms, 1)} | ${c.goal ? `${c.ratio >= c.goal ? "✅" : "❌"} ≥ ${c.goal}×` : ""} |`,
      );
    }
  }
  if (results.scoring) {
    out.push("");
    if (results.scoring.error) out.push(`Scoring micro-benchmark failed: ${results.scoring.error}`);
    else {
      out.push("| Scoring (Node, tinybench) | rankings/s (wall) | rankings per CPU-second | mean µs | p99 µs | ± % | goal |");
      out.push("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
      for (const t of results.scoring.tasks) {
        const goal = t.name === "scoreMethods, 8 methods" ? `≥ 200,000/s: wall ${t.hz >= 200_000 ? "✅" : "❌"}, CPU ${t.cpu_hz >= 200_000 ? "✅" : "❌"}` : "";
        out.push(`| ${t.name} | ${fmt(t.hz)} | ${fmt(t.cpu_hz)} | ${fmt(t.mean_us, 2)} | ${fmt(t.p99_us, 1)} | ${fmt(t.rme, 1)} | ${goal} |`);
      }
    }
  }
  if (results.cache_hit_rate_overall !== null && results.cache_hit_rate_overall !== undefined) {
    out.push("");
    out.push(`Profile cache hit rate over every measured /methods request: ${pct(results.cache_hit_rate_overall)} (${results.cache_lines} log lines; by design 100 % warm, 0 % cold).`);
  }
  if (results.worker_errors?.length) {
    out.push("");
    out.push(`Worker error lines seen: ${results.worker_errors.length} (first: \`${JSON.stringify(results.worker_errors[0]).slice(0, 200)}\`).`);
  }
  return out.join("\n") + "\n";
}
