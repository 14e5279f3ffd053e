import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { loadFacts } from "../../src/analytics/load";
import { buildSummary } from "../../src/analytics/summary";
import { customerRef } from "../../src/crypto/pseudonym";
import worker from "../../src/index";
import { ANALYTICS_ROLLUP_CRON, DATA_LIFECYCLE_CRON } from "../../src/jobs/scheduled";
import { deliverAnalytics, makeDecision, rollupCron } from "../helpers/analytics";
import { api, createMerchant } from "../helpers/fixtures";

/**
 * Cloudflare may start a cron while the previous invocation of it (or of the other one) still runs.
 * These run the worker's scheduled handler several times at once, with requests and queue
 * deliveries in flight, and check what overlapping runs must not do: erase or audit twice, log an
 * erasure's consent changes twice, count an analytics row twice or miss one.
 */
const HOUR = 3_600_000;
const floorHour = (ms: number) => Math.floor(ms / HOUR) * HOUR;

async function cron(at: number, expression: string): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: at, cron: expression }), env, ctx);
  await waitOnExecutionContext(ctx);
}

describe("overlapping scheduled runs", () => {
  it("the daily job and two 5-minute runs purging at once: each customer erased once, audited once, its consents logged once; a restore racing them answers 404", async () => {
    const m = await createMerchant();
    const put = (id: string, body: object) => api(m.secretKey, "/v1/personalize/preferences", { method: "PUT", body: JSON.stringify({ customer_id: id, ...body }) });
    const ids = Array.from({ length: 5 }, (_, i) => `overlap_${i}`);
    for (const id of ids) {
      expect((await put(id, { cross_merchant_consent: true, personalization_enabled: false, excluded_methods: ["visa"] })).status).toBe(200);
      expect((await api(m.secretKey, `/v1/personalize/customers/${id}`, { method: "DELETE" })).status).toBe(202);
    }
    const at = Date.now() + 31 * 24 * HOUR;
    const [, , , restore] = await Promise.all([
      cron(at, DATA_LIFECYCLE_CRON),
      cron(at, ANALYTICS_ROLLUP_CRON),
      cron(at + 1, ANALYTICS_ROLLUP_CRON),
      api(m.secretKey, `/v1/personalize/customers/${ids[0]}/restore`, { method: "POST" }), // past purge_after by the jobs' clock, not by its own
    ]);
    // Sent at our clock, inside the grace period: either it committed first (restored, nothing erased) or it is 404.
    const restored = restore.status === 200;
    for (const id of ids) {
      const ref = await customerRef(env.PII_KEY, id);
      const rows = async (sql: string) => (await env.DB.prepare(sql).bind(m.merchantId, ref).all<Record<string, unknown>>()).results;
      const audit = (await rows("SELECT action FROM data_rights_audit WHERE merchant_id = ? AND customer_ref = ? ORDER BY id")).map((r) => r.action);
      const erasure = await rows("SELECT consent_type, action FROM consent_log WHERE merchant_id = ? AND customer_ref = ? AND reason = 'erasure' ORDER BY id");
      const prefs = await rows("SELECT 1 FROM preferences WHERE merchant_id = ? AND customer_ref = ?");
      if (id === ids[0] && restored) {
        expect({ audit, erasure, prefs: prefs.length }).toEqual({ audit: ["delete", "restore"], erasure: [], prefs: 1 });
        continue;
      }
      expect({ id, audit, erasure, prefs: prefs.length }).toEqual({
        id, audit: ["delete", "purge"], prefs: 0,
        erasure: [{ consent_type: "cross_merchant", action: "revoked" }, { consent_type: "personalization", action: "granted" }],
      });
    }
    if (!restored) expect(restore.status).toBe(404);
  });

  it("rollup runs overlapping each other and the analytics consumer: every decision counted once, rolled up or raw", async () => {
    const m = await createMerchant({ holdout_percent: 0 });
    await rollupCron();
    const closed = floorHour(Date.now()) - 6 * HOUR;
    const decision = (i: number) => makeDecision(m.merchantId, { customer: `ov_${i}`, at: closed + (i % 5) * HOUR + i * 1000, arm: "treatment", fallback: null, ranked: ["visa"] });
    const deliveries: Promise<unknown>[] = [];
    const runs: Promise<unknown>[] = [];
    for (let round = 0; round < 4; round++) {
      const batch = await Promise.all(Array.from({ length: 10 }, (_, j) => decision(round * 10 + j)));
      deliveries.push(deliverAnalytics(batch.map((d) => d.message)));
      runs.push(cron(Date.now(), ANALYTICS_ROLLUP_CRON), cron(Date.now() + 1, ANALYTICS_ROLLUP_CRON));
    }
    await Promise.all([...deliveries, ...runs]);
    const meta = { merchant_id: m.merchantId, from: "f", to: "t", holdout_percent: 0 };
    const from = closed - HOUR;
    const to = floorHour(Date.now()) + HOUR;
    const read = async (nowMs: number) => buildSummary(meta, await loadFacts(env.DB, m.merchantId, from, to, nowMs, ["decisions", "conversions", "ttp", "payments", "offers"], { useDaily: true }));
    const raw = await read(from); // every hour open: raw rows only
    expect(raw.arms.treatment.decisions).toBe(40);
    expect(await read(Date.now())).toEqual(raw); // whatever the overlapping runs left rolled up or dirty
    await rollupCron();
    expect(await read(Date.now())).toEqual(raw);
  });
});
