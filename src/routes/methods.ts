import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { explicitContext, resolveCheckoutCustomer } from "../checkout/resolve";
import type { App, AppEnv } from "../env";
import { logField, logRequestError } from "../middleware/logger";
import { type ExplicitContext, type ResolvedContext, resolveContext } from "../personalization/context";
import { recordDecision } from "../analytics/record";
import { customerTag, signDecision } from "../personalization/decision";
import type { PopularityRow } from "../personalization/prior";
import { rankForCustomer, type RankingResult } from "../personalization/ranking";
import { errorResponses, MERCHANT_ERRORS } from "../schemas/common";
import { MethodsResponse, PersonalizeQuery } from "../schemas/personalization";
import { merchantSecurity } from "../schemas/security";
import { readPopularity } from "../storage/popularity";
import { type CacheOutcome, readProfile } from "../storage/profile";
import { withTimeout } from "../storage/timeout";

type Ctx = Context<AppEnv>;

export interface PersonalizedAnswer {
  nowMs: number;
  /** null for a guest (publishable key without a checkout session) or an unverified session. */
  customerRef: string | null;
  context: ResolvedContext;
  result: RankingResult;
  /** Profile cache outcome; null when the profile could not be read (degraded). */
  cache: CacheOutcome | null;
}

function requestContext(c: Ctx, explicit: ExplicitContext, nowMs: number): ResolvedContext {
  const cf = c.req.raw.cf as { country?: string; timezone?: string } | undefined;
  return resolveContext(explicit, { userAgent: c.req.header("User-Agent"), ipCountry: c.req.header("CF-IPCountry") ?? cf?.country, cfTimezone: cf?.timezone }, nowMs);
}


/**
 * The shared read path of /methods and /offers: customer, context, profile (KV over D1) and the
 * merchant's popularity prior, then the pure ranking. A failed or slow profile read answers with the
 * merchant's default order for the context (`degraded`), logged as an error and counted in the log
 * line; a failed popularity read only loses the prior.
 */
export async function personalize(c: Ctx, query: PersonalizeQuery): Promise<PersonalizedAnswer> {
  const nowMs = Date.now();
  const merchant = c.get("merchant");
  // Who the answer is for: a customer named by a secret key, a checkout session's customer, or a guest.
  const who = await resolveCheckoutCustomer(c, query, nowMs);
  const ref = who.kind === "customer" ? who.customerRef : null;
  if (ref) logField(c, "customer_ref", ref);
  const context = requestContext(c, explicitContext(query, who), nowMs);
  const waitUntil = (p: Promise<unknown>) => c.executionCtx.waitUntil(p);
  const onCacheError = (err: unknown) => logRequestError(c, "cache error", err);

  // The profile (KV over D1) and the merchant's popularity prior are read side by side.
  const popularityRead = withTimeout(readPopularity(c.env, merchant.merchant_id, { waitUntil, onCacheError }), "popularity read").catch((err: unknown) => {
    logRequestError(c, "popularity read failed; ranking without the prior", err);
    return [] as PopularityRow[];
  });
  let profile = null;
  let cache: CacheOutcome | null = null;
  if (ref) {
    try {
      ({ profile, cache } = await withTimeout(readProfile(c.env, merchant.merchant_id, ref, { crossMerchant: merchant.features.cross_merchant, waitUntil, onCacheError }), "profile read"));
      logField(c, "cache", cache);
    } catch (err) {
      logRequestError(c, "profile read failed; answering degraded", err);
      logField(c, "degraded", true);
    }
  }
  // A degraded answer does not wait for the prior: the merchant's default order needs none.
  const popularity = profile || !ref ? await popularityRead : [];
  const result = rankForCustomer({ merchant, customerRef: ref, profile, popularity, context, nowMs, unverified: who.kind === "unverified" });
  logField(c, "personalized", result.personalized);
  if (result.fallback_reason) logField(c, "fallback_reason", result.fallback_reason);
  return { nowMs, customerRef: ref, context, result, cache };
}

export function contextView(ctx: ResolvedContext) {
  return {
    device_type: ctx.device_type,
    country: ctx.country,
    amount: ctx.amount,
    currency: ctx.currency,
    timezone: ctx.timezone,
    time_of_day: ctx.time_of_day,
    day_of_week: ctx.day_of_week,
  };
}

const route = createRoute({
  method: "get",
  path: "/v1/personalize/methods",
  operationId: "getMethods",
  tags: ["Personalization"],
  summary: "Rank the merchant's payment methods for a customer in a context",
  security: merchantSecurity,
  request: { query: PersonalizeQuery },
  responses: {
    200: { description: "Methods, best first (personalized, or a fallback order with its reason)", content: { "application/json": { schema: MethodsResponse } } },
    ...errorResponses(...MERCHANT_ERRORS),
  },
});

export function registerMethodsRoutes(app: App): void {
  app.openapi(route, async (c) => {
    const merchant = c.get("merchant");
    const answer = await personalize(c, c.req.valid("query"));
    const { result, context } = answer;
    const ranked = result.methods.map((m) => m.method_id);
    const tag = answer.customerRef === null ? {} : { c: await customerTag(c.env.SIGNING_KEY, merchant.merchant_id, answer.customerRef) };
    const decision_id = await signDecision(c.env.SIGNING_KEY, { m: merchant.merchant_id, a: result.arm, f: result.fallback_reason, r: ranked, t: answer.nowMs, ...tag });
    logField(c, "decision_id", decision_id);

    // ── Decision record ── Everything analytics needs about this answer; the analytics issue sends
    // it to its queue from here (off the hot path, with waitUntil).
    const decision = {
      decision_id,
      merchant_id: merchant.merchant_id,
      customer_ref: answer.customerRef,
      issued_at: new Date(answer.nowMs).toISOString(),
      arm: result.arm,
      personalized: result.personalized,
      fallback_reason: result.fallback_reason,
      ranked,
      context: { device_type: context.device_type, country: context.country, currency: context.currency },
      cache: answer.cache,
      // The config rankForCustomer assigned the arm with (the same cached merchant): SRM compares
      // the split with the percent in force at each decision.
      holdout_percent: merchant.holdout_percent,
    };
    // A HEAD answer has no body: nobody sees that order or its decision_id (which no feedback can
    // then name), so it is no decision; counted, it would only dilute the conversion rates.
    if (c.req.method !== "HEAD") recordDecision(c.env, c.executionCtx, c.get("requestId"), decision);

    return c.json(
      {
        methods: result.methods,
        personalized: result.personalized,
        ...(result.fallback_reason ? { fallback_reason: result.fallback_reason } : {}),
        decision_id,
        context: contextView(context),
      },
      200,
    );
  });
}
