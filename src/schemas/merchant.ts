import { z } from "@hono/zod-openapi";
import { CATALOG_BY_ID } from "../catalog/methods";
import { Country, Currency, DeviceType, MerchantId, MethodId, OfferId, Tier, Timestamp } from "./common";

const CatalogMethodId = MethodId.refine((id) => CATALOG_BY_ID.has(id), "is not a method of the catalog (GET /v1/payment-methods)");

export const Origin = z
  .string()
  .max(255)
  .regex(/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/, "must be an origin like https://shop.example.com (scheme, host, optional port)");

export const RateLimitOverride = z.strictObject({
  requests_per_hour: z.number().int().min(1).max(10_000_000),
  burst: z.number().int().min(1).max(1_000_000),
});

export const Features = z.strictObject({
  targeted_offers: z.boolean().default(false),
  cross_merchant: z.boolean().default(false),
});

export const Offer = z
  .strictObject({
    offer_id: OfferId,
    method_id: CatalogMethodId,
    title: z.string().min(1).max(200),
    description: z.string().max(1000).default(""),
    discount_type: z.enum(["percent", "fixed"]),
    discount_value: z.number().positive().max(1e12),
    min_amount: z.number().int().min(0).max(1e12).optional(),
    currency: Currency.optional(),
    countries: z.array(Country).max(250).optional(),
    device_types: z.array(DeviceType).max(3).optional(),
    starts_at: Timestamp.optional(),
    ends_at: Timestamp.optional(),
  })
  .refine((o) => o.discount_type !== "percent" || o.discount_value <= 100, { message: "a percent discount is at most 100", path: ["discount_value"] })
  .refine((o) => !o.starts_at || !o.ends_at || o.starts_at < o.ends_at, { message: "starts_at must be before ends_at", path: ["ends_at"] })
  .openapi("Offer");
export type Offer = z.infer<typeof Offer>;

const uniqueList = <T extends z.ZodType<string>>(item: T, max: number) =>
  z.array(item).max(max).refine((list) => new Set(list).size === list.length, "must not contain duplicates");

/** Merchant-tunable weights of the scoring model (src/personalization/weights.ts lists the keys). */
export const ScoringWeightsOverride = z.record(z.string().regex(/^[a-z_]{1,40}$/), z.number().min(-1000).max(1000));

const merchantFields = {
  name: z.string().min(1).max(200),
  tier: Tier,
  methods: uniqueList(CatalogMethodId, 60).min(1),
  allowed_origins: uniqueList(Origin, 50),
  rate_limit: RateLimitOverride.nullable(),
  holdout_percent: z.number().min(0).max(50),
  features: Features,
  offers: z.array(Offer).max(100).refine((list) => new Set(list.map((o) => o.offer_id)).size === list.length, "offer_id values must be unique"),
  scoring_weights: ScoringWeightsOverride,
};

export const MerchantCreate = z
  .strictObject({
    merchant_id: MerchantId,
    name: merchantFields.name,
    tier: merchantFields.tier,
    methods: merchantFields.methods,
    allowed_origins: merchantFields.allowed_origins.default([]),
    rate_limit: merchantFields.rate_limit.optional(),
    holdout_percent: merchantFields.holdout_percent.default(0),
    features: merchantFields.features.default({ targeted_offers: false, cross_merchant: false }),
    offers: merchantFields.offers.default([]),
    scoring_weights: merchantFields.scoring_weights.optional(),
  })
  .superRefine(checkOffersUseEnabledMethods)
  .openapi("MerchantCreate");

export const MerchantPatch = z
  .strictObject({
    name: merchantFields.name.optional(),
    tier: merchantFields.tier.optional(),
    methods: merchantFields.methods.optional(),
    allowed_origins: merchantFields.allowed_origins.optional(),
    rate_limit: merchantFields.rate_limit.optional(),
    holdout_percent: merchantFields.holdout_percent.optional(),
    features: z.strictObject({ targeted_offers: z.boolean().optional(), cross_merchant: z.boolean().optional() }).optional(),
    offers: merchantFields.offers.optional(),
    scoring_weights: merchantFields.scoring_weights.optional(),
  })
  .openapi("MerchantPatch");

export const MerchantView = z
  .object({
    merchant_id: MerchantId,
    name: z.string(),
    tier: Tier,
    methods: z.array(MethodId),
    allowed_origins: z.array(z.string()),
    rate_limit: RateLimitOverride.nullable(),
    holdout_percent: z.number(),
    features: z.object({ targeted_offers: z.boolean(), cross_merchant: z.boolean() }),
    offers: z.array(Offer),
    scoring_weights: ScoringWeightsOverride,
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Merchant");

export function checkOffersUseEnabledMethods(m: { methods?: string[] | undefined; offers?: Offer[] | undefined }, ctx: z.RefinementCtx) {
  if (!m.methods || !m.offers) return;
  m.offers.forEach((o, i) => {
    if (!m.methods!.includes(o.method_id)) {
      ctx.addIssue({ code: "custom", message: `method ${o.method_id} is not enabled for this merchant`, path: ["offers", i, "method_id"] });
    }
  });
}

export const KeyCreate = z.strictObject({ type: z.enum(["secret", "publishable"]) }).openapi("KeyCreate");

export const KeyCreated = z
  .object({
    key_id: z.string(),
    key: z.string().openapi({ description: "The plain key. Shown only in this response." }),
    type: z.enum(["secret", "publishable"]),
    merchant_id: z.string(),
    created_at: z.string(),
  })
  .openapi("KeyCreated");

export const KeyView = z
  .object({
    key_id: z.string(),
    type: z.enum(["secret", "publishable"]),
    prefix: z.string(),
    created_at: z.string(),
    revoked_at: z.string().nullable(),
  })
  .openapi("Key");
