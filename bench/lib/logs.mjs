// Reads wrangler dev's output: the worker's one-JSON-line-per-request logs (attributed to a scenario
// through the X-Request-Id the bench sends) and the feedback consumer's "feedback batch stored" lines.

export function createLogCollector() {
  const byRequestId = new Map(); // request_id → { lines, cache: {hit, miss}, statuses, server latencies }
  const stored = { lines: 0, stored: 0, duplicates: 0, dropped: 0, poison: 0, lastAt: 0 };
  const storedWaiters = [];
  const errors = [];

  function onLine(line) {
    if (!line.startsWith("{")) return;
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      return;
    }
    if (entry.message === "feedback batch stored") {
      stored.lines += 1;
      stored.stored += entry.stored ?? 0;
      stored.duplicates += entry.duplicates ?? 0;
      stored.dropped += (entry.dropped_opted_out ?? 0) + (entry.dropped_pending_deletion ?? 0);
      stored.poison += entry.poison ?? 0;
      stored.lastAt = performance.now();
      stored.duration_ms = (stored.duration_ms ?? 0) + (entry.duration_ms ?? 0);
      if (process.env.BENCH_VERBOSE === "1") console.error("[bench]   consumer:", line);
      for (const w of [...storedWaiters]) w();
      return;
    }
    if (entry.level === "error" && errors.length < 50) errors.push(entry);
    if (typeof entry.request_id !== "string" || !entry.request_id.startsWith("bench.")) return;
    let s = byRequestId.get(entry.request_id);
    if (!s) byRequestId.set(entry.request_id, (s = { lines: 0, cache: { hit: 0, miss: 0 }, statuses: {}, fields: {} }));
    s.lines += 1;
    if (entry.cache === "hit" || entry.cache === "miss") s.cache[entry.cache] += 1;
    s.statuses[entry.status_code] = (s.statuses[entry.status_code] ?? 0) + 1;
    for (const key of ["fallback_reason", "rate_limiter", "degraded"]) {
      if (entry[key] !== undefined) s.fields[`${key}=${entry[key]}`] = (s.fields[`${key}=${entry[key]}`] ?? 0) + 1;
    }
  }

  return {
    onLine,
    stats: (requestId) => byRequestId.get(requestId) ?? null,
    stored,
    errors,
    resetStored() {
      Object.assign(stored, { lines: 0, stored: 0, duplicates: 0, dropped: 0, poison: 0, lastAt: 0 });
    },
    /** Resolves with the time (performance.now()) at which the consumer had handled `n` events, or null on timeout. */
    waitForHandled(n, timeoutMs) {
      const handled = () => stored.stored + stored.duplicates + stored.dropped;
      if (handled() >= n) return Promise.resolve(stored.lastAt);
      return new Promise((resolve) => {
        const check = () => {
          if (handled() >= n) {
            cleanup();
            resolve(stored.lastAt);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          resolve(null);
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          storedWaiters.splice(storedWaiters.indexOf(check), 1);
        };
        storedWaiters.push(check);
      });
    },
    /** Waits until no consumer line has arrived for `quietMs` (background writes done), at most `maxMs`. */
    async waitForQuiet(quietMs = 1500, maxMs = 60_000) {
      const start = performance.now();
      for (;;) {
        const since = performance.now() - Math.max(stored.lastAt, start);
        if (since >= quietMs || performance.now() - start > maxMs) return;
        await new Promise((r) => setTimeout(r, 200));
      }
    },
  };
}
