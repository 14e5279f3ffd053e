import { createRoute } from "@hono/zod-openapi";
import { loadFacts } from "../analytics/load";
import { MAX_HOURLY_RANGE_DAYS, MAX_RANGE_DAYS, resolveRange } from "../analytics/range";
import { buildSummary } from "../analytics/summary";
import { bucketKey } from "../analytics/timeBuckets";
import { buildTimeseries } from "../analytics/timeseries";
import type { App } from "../env";
import { validationError } from "../errors";
import { logField } from "../middleware/logger";
import { SummaryQuery, SummaryResponse, TimeseriesQuery, TimeseriesResponse } from "../schemas/analytics";
import { errorResponses, MERCHANT_ERRORS } from "../schemas/common";
import { merchantSecurity } from "../schemas/security";

const tags = ["Analytics"];

const summary = createRoute({
  method: "get",
  path: "/v1/analytics/summary",
  operationId: "getAnalyticsSummary",
  tags,
  security: merchantSecurity,
  summary: "Experiment report: per-arm conversion, lift with 95 % CI, SRM, AOV, methods, offers, fallbacks (secret key)",
  description:
    "Covers [from, to) widened to whole hours (default: the last 7 days; from and to as sent at most 90 days apart, so the covered window is at most 90 days and an hour). Closed hours come from hourly/daily rollups (refreshed every 5 minutes), the open hour from raw rows. Rates are null when their denominator is 0.",
  request: { query: SummaryQuery },
  responses: {
    200: { description: "The report", content: { "application/json": { schema: SummaryResponse } } },
    ...errorResponses(...MERCHANT_ERRORS),
  },
});

const timeseries = createRoute({
  method: "get",
  path: "/v1/analytics/timeseries",
  operationId: "getAnalyticsTimeseries",
  tags,
  security: merchantSecurity,
  summary: "One metric per arm and hour or day, oldest first, empty buckets included (secret key)",
  description: "metric: decisions | conversions | conversion_rate | top1_rate | aov (aov needs currency). from and to as sent at most 90 days apart, 31 for granularity=hour; widened to whole buckets, a series has at most 91 daily or 745 hourly points.",
  request: { query: TimeseriesQuery },
  responses: {
    200: { description: "The series", content: { "application/json": { schema: TimeseriesResponse } } },
    ...errorResponses(...MERCHANT_ERRORS),
  },
});

export function registerAnalyticsRoutes(app: App): void {
  app.openapi(summary, async (c) => {
    const merchant = c.get("merchant");
    const nowMs = Date.now();
    const range = resolveRange(c.req.valid("query"), nowMs, { align: "hour", maxDays: MAX_RANGE_DAYS });
    if (!range.ok) throw validationError(range.details);
    const facts = await loadFacts(c.env.DB, merchant.merchant_id, range.fromMs, range.toMs, nowMs, ["decisions", "conversions", "ttp", "payments", "offers"], { useDaily: true });
    logField(c, "analytics_window_hours", (range.toMs - range.fromMs) / 3_600_000);
    const body = buildSummary(
      { merchant_id: merchant.merchant_id, from: bucketKey(range.fromMs), to: bucketKey(range.toMs), holdout_percent: merchant.holdout_percent },
      facts,
    );
    return c.json(body, 200);
  });

  app.openapi(timeseries, async (c) => {
    const merchant = c.get("merchant");
    const q = c.req.valid("query");
    if (q.metric === "aov" && q.currency === undefined) throw validationError([{ path: "currency", message: "is required for metric=aov (AOV is never mixed across currencies)" }]);
    const nowMs = Date.now();
    const maxDays = q.granularity === "hour" ? MAX_HOURLY_RANGE_DAYS : MAX_RANGE_DAYS;
    const range = resolveRange(q, nowMs, { align: q.granularity, maxDays });
    if (!range.ok) throw validationError(range.details);
    const facts = await loadFacts(c.env.DB, merchant.merchant_id, range.fromMs, range.toMs, nowMs, ["decisions", "conversions"], { useDaily: q.granularity === "day" });
    const points = buildTimeseries({ metric: q.metric, granularity: q.granularity, fromMs: range.fromMs, toMs: range.toMs, currency: q.currency }, facts);
    return c.json(
      {
        metric: q.metric,
        granularity: q.granularity,
        ...(q.currency !== undefined ? { currency: q.currency } : {}),
        from: bucketKey(range.fromMs),
        to: bucketKey(range.toMs),
        points,
      },
      200,
    );
  });
}
