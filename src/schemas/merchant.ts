import { z } from "@hono/zod-openapi";
import { WEIGHT_BOUNDS, WEIGHT_KEYS } from "../personalization/weights";
import { CATALOG_BY_ID } from "../catalog/methods";
import { Country, Currency, DeviceType, DUPLICATES_MESSAGE, hasDuplicates, idOf128, MerchantId, MethodId, OfferId, pageLimit, Text, Tier, Timestamp } from "./common";
import { VISITOR_LIMIT, VISITOR_PERIOD_SECONDS } from "../ratelimit/visitor";

const CatalogMethodId = MethodId.refine((id) => CATALOG_BY_ID.has(id), "is not a method of the catalog (GET /v1/payment-methods)");

export const Origin = z
  .string()
  .max(255)
  // The host: a name or IPv4 address, or an IPv6 address in brackets (http://[::1]:8787, a local checkout).
  .regex(/^https?:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/, "must be an origin like https://shop.example.com (scheme, host, optional port)");

/**
 * An allowed origin as written by the merchant, stored as a browser serializes its Origin header
 * (lowercase scheme and host, no default port): `https://Shop.Example:443` would otherwise never
 * equal any Origin a browser sends, and its checkout would be refused without a word. A value no
 * browser can send is a 400: one URL refuses (port over 65535, a malformed IPv4 address), and
 * two URL takes but no page can be served from (port 0, a host that is no DNS name: hostProblem).
 */
const AllowedOrigin = Origin.transform((origin, ctx) => {
  const canonical = canonicalOrigin(origin);
  const problem = canonical === null ? "is not an origin a browser can send" : originProblem(canonical);
  if (problem !== null) {
    ctx.addIssue({ code: "custom", message: problem });
    return z.NEVER;
  }
  return canonical!;
});

/** A DNS label as a browser's Origin carries it: letters, digits, hyphens, not at either end, 1-63 characters (an IDN in punycode, xn--…). */
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Why a canonical origin (canonicalOrigin's output) is one no browser ever sends, or null: port 0
 * (no server listens there) or a host that is neither an IP literal nor a DNS name (`https://-`,
 * `https://a..b`, a label over 63 characters). `localhost` is a DNS name; a trailing dot
 * (`https://shop.example.`, the fully qualified spelling) is kept, as a browser sends it.
 */
export function originProblem(canonical: string): string | null {
  const url = new URL(canonical);
  if (url.port === "0") return "has port 0, which no browser sends: leave the port out for the scheme's default, or give the page's port";
  const host = url.hostname;
  if (host.startsWith("[") || /^\d{1,3}(\.\d{1,3}){3}$/.test(host)) return null; // an IP literal (URL wrote it canonical)
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  // No length check of the whole name: Origin's 255 characters keep it under DNS's 253.
  if (name.split(".").every((label) => DNS_LABEL.test(label))) return null;
  return "has a host that is no DNS name: labels of letters, digits and hyphens (not first or last), at most 63 characters each, an IDN in punycode (xn--…)";
}

/** An origin as a browser serializes it (`https://Shop.Example:443` → `https://shop.example`), or null when no browser can send it. */
export function canonicalOrigin(origin: string): string | null {
  try {
    return new URL(origin).origin;
  } catch {
    return null;
  }
}

/**
 * Why a rate_limit's burst is refused, or null when it is consistent: a bucket larger than an hour's
 * tokens would admit more than the hourly limit (RateLimit-Limit) in one go.
 */
export function burstProblem(r: { requests_per_hour: number; burst: number }): string | null {
  if (r.burst <= r.requests_per_hour) return null;
  return `must be at most requests_per_hour (${r.requests_per_hour}): a burst of ${r.burst} would let more than the hourly limit through at once`;
}

export const RateLimitOverride = z
  .strictObject({
    requests_per_hour: z
      .number()
      .int()
      .min(1)
      .max(10_000_000)
      .openapi({ description: "Tokens added to the bucket per hour, evenly spread: the sustained limit (RateLimit-Limit). An integer from 1 to 10,000,000." }),
    burst: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .openapi({ description: "Capacity of the bucket: requests allowed at once. An integer from 1 to 1,000,000 and at most requests_per_hour." }),
  })
  .refine((r) => burstProblem(r) === null, {
    path: ["burst"],
    error: (issue) => burstProblem(issue.input as { requests_per_hour: number; burst: number }) ?? "must be at most requests_per_hour",
    // Only once both fields are valid: a burst compared with an out-of-range requests_per_hour would be noise.
    when: (payload) => payload.issues.length === 0,
  })
  .openapi({ description: "An explicit token bucket that overrides the tier's limits (burst ≤ requests_per_hour); null uses the tier's." });

const VISITOR_LIMIT_DESCRIPTION = `Extension: when true, requests with this merchant's publishable key are also limited per visitor (client IP, an IPv6 /64) to ${VISITOR_LIMIT} per ${VISITOR_PERIOD_SECONDS} s per Cloudflare location, before the merchant's bucket, so one script replaying the key from a checkout page cannot spend the bucket the merchant's backend shares (a refused request takes no token). Off by default: the contract's per-merchant bucket alone.`;

/**
 * The merchant's feature switches, each off until ops turn it on, with the description (if any) the
 * OpenAPI document gives it. The create, patch and read schemas and the stored row's defaults are all
 * made from this list, so a new switch is one line here.
 */
const FEATURE_DESCRIPTIONS = {
  targeted_offers: undefined,
  cross_merchant: undefined,
  visitor_limit: VISITOR_LIMIT_DESCRIPTION,
} as const satisfies Record<string, string | undefined>;
export type FeatureName = keyof typeof FEATURE_DESCRIPTIONS;
export const FEATURE_NAMES = Object.keys(FEATURE_DESCRIPTIONS) as FeatureName[];

/** One schema per switch, made by `make` and described. */
function featureShape<S extends z.ZodType>(make: () => S): Record<FeatureName, S> {
  return Object.fromEntries(FEATURE_NAMES.map((name) => {
    const description = FEATURE_DESCRIPTIONS[name];
    return [name, description === undefined ? make() : make().openapi({ description })];
  })) as Record<FeatureName, S>;
}

/** Every switch off: a new merchant's features, and a stored row's for a switch it predates. */
export const FEATURES_OFF = Object.fromEntries(FEATURE_NAMES.map((name) => [name, false])) as Record<FeatureName, boolean>;

export const Features = z.strictObject(featureShape(() => z.boolean().default(false)));

/** Examples of API.md §4, shared by the create, read and patch schemas. */
const OFFER_EXAMPLE = { offer_id: "applepay_5off", method_id: "apple_pay", title: "5% back with Apple Pay", description: "On orders over $20", discount_type: "percent", discount_value: 5, min_amount: 2000, currency: "USD", countries: ["US"], device_types: ["mobile"], starts_at: "2026-02-01T00:00:00Z", ends_at: "2026-03-01T00:00:00Z" };
const MERCHANT_EXAMPLE = {
  merchant_id: "m_demo",
  name: "Demo Shop",
  tier: "growth",
  methods: ["apple_pay", "visa", "mastercard", "paypal", "klarna"],
  allowed_origins: ["https://shop.example"],
  holdout_percent: 10,
  features: { targeted_offers: true, cross_merchant: false },
  offers: [OFFER_EXAMPLE],
};
const MERCHANT_STORED = { ...MERCHANT_EXAMPLE, features: { ...MERCHANT_EXAMPLE.features, visitor_limit: false }, rate_limit: null, scoring_weights: {}, created_at: "2026-02-03T15:30:00.000Z", updated_at: "2026-02-03T15:30:00.000Z" };

export const Offer = z
  .strictObject({
    offer_id: OfferId,
    method_id: CatalogMethodId,
    title: Text.min(1).max(200),
    description: Text.max(1000).default(""),
    discount_type: z.enum(["percent", "fixed"]),
    discount_value: z.number().positive().max(1e12).openapi({ description: "percent: 0 < value ≤ 100; fixed: an integer amount in minor units of the offer's currency" }),
    min_amount: z.number().int().min(0).max(1e12).optional(),
    currency: Currency.optional(),
    countries: z.array(Country).max(250).optional(),
    device_types: z.array(DeviceType).max(3).optional(),
    starts_at: Timestamp.optional(),
    ends_at: Timestamp.optional(),
  })
  .refine((o) => o.discount_type !== "percent" || o.discount_value <= 100, { message: "a percent discount is at most 100", path: ["discount_value"] })
  .refine((o) => o.discount_type !== "fixed" || Number.isInteger(o.discount_value), { message: "a fixed discount is an integer amount in minor units (cents)", path: ["discount_value"] })
  .refine((o) => !o.starts_at || !o.ends_at || Date.parse(o.starts_at) < Date.parse(o.ends_at), { message: "starts_at must be before ends_at", path: ["ends_at"] })
  .openapi("Offer", { example: OFFER_EXAMPLE });
export type Offer = z.infer<typeof Offer>;

const uniqueList = <T extends z.ZodType<string>>(item: T, max: number) =>
  z.array(item).max(max).refine((list) => !hasDuplicates(list), DUPLICATES_MESSAGE);

/**
 * Merchant-tunable weights of the scoring model (src/personalization/weights.ts): every key optional,
 * each within its range. An unknown key (a typo) is a 400, as any unknown field (API.md §1).
 */
export const ScoringWeightsOverride = z.strictObject(
  Object.fromEntries(WEIGHT_KEYS.map((key) => {
    const [lo, hi] = WEIGHT_BOUNDS[key];
    return [key, z.number().min(lo).max(hi).optional()];
  })) as Record<(typeof WEIGHT_KEYS)[number], z.ZodOptional<z.ZodNumber>>,
);

const merchantFields = {
  name: Text.min(1).max(200),
  tier: Tier,
  methods: uniqueList(CatalogMethodId, 60).min(1),
  allowed_origins: uniqueList(AllowedOrigin, 50),
  rate_limit: RateLimitOverride.nullable(),
  holdout_percent: z.number().min(0).max(50),
  features: Features,
  offers: z
    .array(Offer)
    .max(100)
    .refine((list) => !hasDuplicates(list.map((o) => o.offer_id)), "offer_id values must be unique")
    .superRefine((list, ctx) => {
      // An empty list would hide the offer from every known country or device: omit the field for
      // "any". Checked on what is sent only, so an offer stored before the rule still reads back.
      list.forEach((o, i) => {
        // A repeated entry says nothing more and reads like a typo, as in methods and allowed_origins.
        for (const [field, omit] of [["countries", "omit countries to show the offer in every country"], ["device_types", "omit device_types to show the offer on every device"]] as const) {
          const values = o[field];
          if (values?.length === 0) ctx.addIssue({ code: "custom", path: [i, field], message: omit });
          else if (values && hasDuplicates(values)) ctx.addIssue({ code: "custom", path: [i, field], message: DUPLICATES_MESSAGE });
        }
      });
    }),
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
    features: merchantFields.features.default(FEATURES_OFF),
    offers: merchantFields.offers.default([]),
    scoring_weights: merchantFields.scoring_weights.optional(),
  })
  .superRefine(checkOffersUseEnabledMethods)
  .openapi("MerchantCreate", { example: MERCHANT_EXAMPLE });

export const MerchantPatch = z
  .strictObject({
    name: merchantFields.name.optional(),
    tier: merchantFields.tier.optional(),
    methods: merchantFields.methods.optional(),
    allowed_origins: merchantFields.allowed_origins.optional(),
    rate_limit: merchantFields.rate_limit.optional(),
    holdout_percent: merchantFields.holdout_percent.optional(),
    // Each switch optional and without a default: a PATCH merges the switches it names into the stored ones.
    features: z.strictObject(featureShape(() => z.boolean().optional())).optional(),
    offers: merchantFields.offers.optional(),
    scoring_weights: merchantFields.scoring_weights.optional(),
  })
  .openapi("MerchantPatch", { example: { holdout_percent: 5, features: { targeted_offers: false }, rate_limit: { requests_per_hour: 20000, burst: 2000 } } });

/**
 * A stored merchant's id, which may be `.` or `..`: created before those were refused (MerchantId),
 * such a merchant still shows in the list, and a page ending at it must lead on (a cursor is a query
 * value, which, unlike a path segment, carries dots as they are).
 */
const StoredMerchantId = idOf128("m_demo");

export const MerchantView = z
  .object({
    merchant_id: StoredMerchantId,
    name: z.string(),
    tier: Tier,
    methods: z.array(MethodId),
    allowed_origins: z.array(Origin),
    rate_limit: RateLimitOverride.nullable(),
    holdout_percent: z.number(),
    features: z.object(featureShape(() => z.boolean())),
    offers: z.array(Offer),
    // As stored: a config written before keys and ranges were checked reads back as it is (scoring
    // ignores unknown keys and clamps values, src/personalization/weights.ts).
    scoring_weights: z.record(z.string(), z.number()),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("Merchant", { example: MERCHANT_STORED });

/**
 * A PATCH that leaves rate_limit out keeps the stored one, which the schema has not seen: one stored
 * before burst ≤ requests_per_hour was enforced must be replaced (or set to null) in the same PATCH.
 */
export function checkStoredRateLimit(m: { rate_limit: { requests_per_hour: number; burst: number } | null }, ctx: z.RefinementCtx) {
  const problem = m.rate_limit && burstProblem(m.rate_limit);
  if (problem) {
    ctx.addIssue({ code: "custom", message: `the merchant's stored rate_limit is invalid: ${problem}; send a valid rate_limit (or null for the tier's limits) with this change`, path: ["rate_limit", "burst"] });
  }
}

export function checkOffersUseEnabledMethods(m: { methods?: string[] | undefined; offers?: Offer[] | undefined }, ctx: z.RefinementCtx) {
  if (!m.methods || !m.offers) return;
  m.offers.forEach((o, i) => {
    if (!m.methods!.includes(o.method_id)) {
      ctx.addIssue({ code: "custom", message: `method ${o.method_id} is not enabled for this merchant`, path: ["offers", i, "method_id"] });
    }
  });
}

export const KeyId = z.string().regex(/^key_[A-Za-z0-9_-]{1,64}$/, "is not a key id").openapi({ example: "key_9f2c4e1a7b3d" });

export const KeyCreate = z.strictObject({ type: z.enum(["secret", "publishable"]) }).openapi("KeyCreate", { example: { type: "secret" } });

export const KeyCreated = z
  .object({
    key_id: KeyId,
    key: z.string().regex(/^tp2_(sk|pk)_[A-Za-z0-9_-]{43}$/).openapi({ description: "The plain key. Shown only in this response." }),
    type: z.enum(["secret", "publishable"]),
    merchant_id: MerchantId,
    created_at: Timestamp,
  })
  .openapi("KeyCreated", {
    example: { key_id: "key_9f2c4e1a7b3d", key: "tp2_sk_4f1cW9xkq2Zr8bLm0pTnVa3sYd6uEh1JoGiCfR5b7Q_", type: "secret", merchant_id: "m_demo", created_at: "2026-02-03T15:30:00.000Z" },
  });

export const KeyView = z
  .object({
    key_id: KeyId,
    type: z.enum(["secret", "publishable"]),
    prefix: z.string(),
    created_at: Timestamp,
    revoked_at: Timestamp.nullable(),
  })
  .openapi("Key", { example: { key_id: "key_9f2c4e1a7b3d", type: "secret", prefix: "tp2_sk_4f1c", created_at: "2026-02-03T15:30:00.000Z", revoked_at: null } });

export const MAX_MERCHANT_PAGE = 100;
export const DEFAULT_MERCHANT_PAGE = 20;

export const MerchantListQuery = z.strictObject({
  limit: pageLimit("Merchants", MAX_MERCHANT_PAGE, DEFAULT_MERCHANT_PAGE).optional(),
  cursor: StoredMerchantId.optional().openapi({ description: "next_cursor of the previous page (merchants come in the order of their ids)" }),
});

export const MerchantList = z
  .object({
    merchants: z.array(MerchantView),
    next_cursor: StoredMerchantId.nullable().openapi({ description: "Pass as cursor for the next page; null on the last page" }),
  })
  .openapi("MerchantList", { example: { merchants: [MERCHANT_STORED], next_cursor: null } });
