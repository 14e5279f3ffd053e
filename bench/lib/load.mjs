// Load through autocannon's programmatic API. Latencies come from autocannon's per-response event
// (its own histogram has no p95), so p50/p95/p99 are exact over every measured response.
import autocannon from "autocannon";

export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/**
 * One autocannon run.
 * spec: { url, connections, duration (s) | amount (requests), request: {method, path, headers, body}
 *         | next: (i) => {method, path, headers, body} (a fresh request each time, e.g. distinct customers) }
 */
export async function drive(spec) {
  const { url, connections = 10, duration, amount, request, next } = spec;
  const latencies = [];
  const statuses = {};
  let counter = 0;
  const requests = next
    ? [
        {
          setupRequest: (req) => {
            const r = next(counter++);
            return { ...req, ...r, headers: { ...(req.headers ?? {}), ...(r.headers ?? {}) } };
          },
        },
      ]
    : [request];
  const instance = autocannon({
    url,
    connections,
    ...(amount !== undefined ? { amount } : { duration }),
    requests,
    timeout: 30,
    // Same-origin loopback only; never follow anything elsewhere.
    excludeErrorStats: false,
  });
  instance.on("response", (_client, statusCode, _bytes, responseTime) => {
    latencies.push(responseTime);
    statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
  });
  const started = performance.now();
  const result = await instance;
  const elapsedS = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const total = latencies.length;
  const ok = Object.entries(statuses)
    .filter(([s]) => Number(s) >= 200 && Number(s) < 300)
    .reduce((a, [, n]) => a + n, 0);
  const round = (v) => (v === null ? null : Math.round(v * 100) / 100);
  return {
    requests: total,
    ok,
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    elapsed_s: round(elapsedS),
    // Throughput counts successful (2xx) responses only, over the run's wall time.
    rps: round(ok / elapsedS),
    p50_ms: round(percentile(latencies, 50)),
    p95_ms: round(percentile(latencies, 95)),
    p99_ms: round(percentile(latencies, 99)),
    max_ms: round(latencies[total - 1] ?? null),
  };
}
