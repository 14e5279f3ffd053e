import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { bucketKey } from "../../src/analytics/timeBuckets";
import type { SummaryResponse } from "../../src/schemas/analytics";
import { deliverAnalytics, getJson, makeDecision, postFeedback, rollupCron, storeFeedback } from "../helpers/analytics";
import { createMerchant } from "../helpers/fixtures";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe("amount sums past 64 bits", () => {
  it("a day whose conversions sum past 2^63 minor units is rolled up (as a float), not a rollup job that fails every run", async () => {
    // 10,000,000 requests an hour is the highest rate_limit a merchant may have, so an hour may hold
    // 5,000,000 conversions of 10^12 (the largest amount): two such hours of one day sum to 10^19,
    // past SQLite's 64-bit integers (9.22 × 10^18), where sum() raises "integer overflow".
    const m = await createMerchant({ rate_limit: { requests_per_hour: 10_000_000, burst: 10_000 } });
    const day = Math.floor(Date.now() / DAY) * DAY - 2 * DAY;
    for (const h of [1, 2]) {
      await env.DB.prepare(
        "INSERT INTO analytics_conversion_rollups (merchant_id, grain, bucket, arm, currency, rank, conversions, amount_n, amount_sum) VALUES (?1, 'h', ?2, 'treatment', 'USD', 1, 5000000, 5000000, 5000000000000000000)",
      )
        .bind(m.merchantId, bucketKey(day + h * HOUR))
        .run();
    }
    // One real conversion in a third hour of that day marks it dirty: the rollup rebuilds the day from its hours.
    const d = await makeDecision(m.merchantId, { customer: "big", at: day + 3 * HOUR + 60_000, arm: "treatment", fallback: null, ranked: ["visa", "paypal"] });
    await deliverAnalytics([d.message]);
    await storeFeedback([await postFeedback(m, { customer_id: "big", method_id: "visa", event_id: "e_big", decision_id: d.id, amount: 1e12, currency: "USD" })]);

    await rollupCron();
    const daily = await env.DB.prepare("SELECT conversions, amount_n, amount_sum FROM analytics_conversion_rollups WHERE merchant_id = ?1 AND grain = 'd'")
      .bind(m.merchantId)
      .all<{ conversions: number; amount_n: number; amount_sum: number }>();
    expect(daily.results).toHaveLength(1);
    expect(daily.results[0]).toMatchObject({ conversions: 10_000_001, amount_n: 10_000_001 });
    expect(daily.results[0]!.amount_sum / (1e19 + 1e12)).toBeCloseTo(1, 12);

    const s = await getJson<SummaryResponse>(m.secretKey, `/v1/analytics/summary?from=${bucketKey(day)}&to=${bucketKey(day + DAY)}`);
    expect(s.aov).toHaveLength(1);
    expect(s.aov[0]!.currency).toBe("USD");
    expect(Math.abs(s.aov[0]!.treatment! - 1e12)).toBeLessThanOrEqual(1);
  });
});
