import { z } from "@hono/zod-openapi";
import { ApiKeyQuery, Country, Currency, DeviceType, MerchantId, MethodId, OfferId, Timestamp } from "./common";
import { FallbackReason } from "./personalization";

// ── Queue messages (analytics queue, version 1) ──────────────────────────────────────────────────

const Arm = z.enum(["treatment", "holdout"]);

/** One /methods answer. Holds the pseudonym (for the purge), never a customer id. */
export const DecisionMessage = z.object({
  v: z.literal(1),
  kind: z.literal("decision"),
  decision_id: z.string().min(1).max(4096),
  merchant_id: MerchantId,
  customer_ref: z.string().min(1).max(128).nullable(),
  issued_at: Timestamp,
  arm: Arm.nullable(),
  personalized: z.boolean(),
  fallback_reason: z.string().max(64).nullable(),
  ranked: z.array(MethodId).max(200),
  device_type: DeviceType.nullable(),
  country: Country.nullable(),
  currency: Currency.nullable(),
  cache: z.enum(["hit", "miss"]).nullable(),
  /** The merchant's holdout_percent the arm was assigned with. Absent in messages queued before it existed. */
  holdout_percent: z.number().min(0).max(100).nullable().optional(),
});
export type DecisionMessage = z.infer<typeof DecisionMessage>;

/** The offers one /offers answer showed. */
export const OffersShownMessage = z.object({
  v: z.literal(1),
  kind: z.literal("offers_shown"),
  impression_id: z.string().min(1).max(64),
  merchant_id: MerchantId,
  customer_ref: z.string().min(1).max(128).nullable(),
  shown_at: Timestamp,
  offer_ids: z.array(OfferId).min(1).max(200),
});
export type OffersShownMessage = z.infer<typeof OffersShownMessage>;

export const AnalyticsMessage = z.discriminatedUnion("kind", [DecisionMessage, OffersShownMessage]);
export type AnalyticsMessage = z.infer<typeof AnalyticsMessage>;

// ── API ──────────────────────────────────────────────────────────────────────────────────────────

const RangeParams = {
  merchant_id: MerchantId.optional(),
  api_key: ApiKeyQuery,
  from: Timestamp.optional().openapi({ description: "Start (inclusive), ISO 8601 UTC; default `to` − 7 days. Rounded down to the bucket." }),
  to: Timestamp.optional().openapi({ description: "End (exclusive), ISO 8601 UTC; default now. Rounded up to the bucket." }),
};

export const SummaryQuery = z.strictObject(RangeParams);
export type SummaryQuery = z.infer<typeof SummaryQuery>;

export const TimeseriesMetric = z.enum(["decisions", "conversions", "conversion_rate", "top1_rate", "aov"]);
export type TimeseriesMetric = z.infer<typeof TimeseriesMetric>;
export const Granularity = z.enum(["hour", "day"]);
export type Granularity = z.infer<typeof Granularity>;

export const TimeseriesQuery = z.strictObject({
  ...RangeParams,
  metric: TimeseriesMetric,
  granularity: Granularity.optional().default("day"),
  currency: Currency.optional().openapi({ description: "Required for metric=aov" }),
});
export type TimeseriesQuery = z.infer<typeof TimeseriesQuery>;

const Rate = z.number().nullable();

const ArmStats = z.object({
  decisions: z.number().int(),
  conversions: z.number().int(),
  conversion_rate: Rate,
  top1_rate: Rate,
  mrr: Rate,
  median_time_to_pay_ms: z.number().int().nullable().openapi({
    description:
      "From 1 %-wide log bins: within 0.5 % of the exact median when the middle value(s) are above 1 s; a time to pay of 1 s or less counts as 500 ms",
  }),
});

const LiftSchema = z.object({
  relative: z.number().nullable().openapi({ description: "R − 1, R = treatment rate / holdout rate; null while either arm has no decisions or the holdout no successes" }),
  ci95: z
    .tuple([z.number(), z.number()])
    .nullable()
    .openapi({
      description:
        "95 % interval of `relative` by the delta method on ln R: exp(ln R ± 1.96·SE(ln R)) − 1, so never below −1; null when the treatment rate is 0 or both rates are 1 (no variance)",
    }),
  p_value: z.number().nullable().openapi({ description: "Two-sided Wald test of ln R = 0 with the same SE: below 0.05 exactly when ci95 excludes 0; null with ci95" }),
});

export const SummaryResponse = z
  .object({
    merchant_id: MerchantId,
    from: Timestamp,
    to: Timestamp,
    holdout_percent: z.number().openapi({ description: "The merchant's current holdout_percent" }),
    arms: z.object({ treatment: ArmStats, holdout: ArmStats }),
    lift: z.object({ conversion_rate: LiftSchema, top1_rate: LiftSchema }),
    srm: z.object({
      expected_holdout_share: z.number().openapi({
        description:
          "Mean of the holdout_percent in force at each of the window's decisions with an arm, / 100 (decisions recorded before it was stored count with the current one); the current one when there are none",
      }),
      observed_holdout_share: Rate,
      p_value: Rate,
      warning: z.boolean(),
    }),
    aov: z.array(z.object({ currency: Currency, treatment: z.number().int().nullable(), holdout: z.number().int().nullable() })),
    methods: z.array(
      z.object({ method_id: MethodId, payments: z.number().int(), share: Rate, treatment_share: Rate, holdout_share: Rate }),
    ),
    offers: z.object({ shown: z.number().int(), redeemed: z.number().int(), redemption_rate: Rate }),
    personalization_rate: Rate,
    cache_hit_rate: Rate,
    // Every reason, 0 when none: a stable shape a dashboard can read without guarding each key.
    fallbacks: z.strictObject(Object.fromEntries(FallbackReason.options.map((r) => [r, z.number().int()])) as Record<z.infer<typeof FallbackReason>, z.ZodNumber>),
  })
  .openapi("AnalyticsSummary", {
    example: {
      merchant_id: "m_1",
      from: "2026-02-01T00:00:00Z",
      to: "2026-02-08T00:00:00Z",
      holdout_percent: 10,
      arms: {
        treatment: { decisions: 9012, conversions: 6120, conversion_rate: 0.6791, top1_rate: 0.71, mrr: 0.83, median_time_to_pay_ms: 41000 },
        holdout: { decisions: 988, conversions: 640, conversion_rate: 0.6478, top1_rate: 0.44, mrr: 0.65, median_time_to_pay_ms: 52000 },
      },
      lift: {
        conversion_rate: { relative: 0.0483, ci95: [0.011, 0.086], p_value: 0.011 },
        top1_rate: { relative: 0.61, ci95: [0.52, 0.7], p_value: 0.0001 },
      },
      srm: { expected_holdout_share: 0.1, observed_holdout_share: 0.0988, p_value: 0.71, warning: false },
      aov: [{ currency: "USD", treatment: 5230, holdout: 5104 }],
      methods: [{ method_id: "apple_pay", payments: 3120, share: 0.46, treatment_share: 0.49, holdout_share: 0.31 }],
      offers: { shown: 5400, redeemed: 610, redemption_rate: 0.113 },
      personalization_rate: 0.81,
      cache_hit_rate: 0.93,
      fallbacks: { no_history: 1400, personalization_disabled: 35, holdout: 988, customer_deleted: 2, guest: 0, degraded: 0 },
    },
  });
export type SummaryResponse = z.infer<typeof SummaryResponse>;

export const TimeseriesResponse = z
  .object({
    metric: TimeseriesMetric,
    granularity: Granularity,
    currency: Currency.optional(),
    from: Timestamp,
    to: Timestamp,
    points: z.array(z.object({ t: Timestamp, treatment: z.number().nullable(), holdout: z.number().nullable() })),
  })
  .openapi("AnalyticsTimeseries", {
    example: {
      metric: "conversion_rate",
      granularity: "day",
      from: "2026-02-01T00:00:00Z",
      to: "2026-02-03T00:00:00Z",
      points: [
        { t: "2026-02-01T00:00:00Z", treatment: 0.68, holdout: 0.65 },
        { t: "2026-02-02T00:00:00Z", treatment: 0.67, holdout: null },
      ],
    },
  });
export type TimeseriesResponse = z.infer<typeof TimeseriesResponse>;
