import { createRoute } from "@hono/zod-openapi";
import type { App } from "../env";
import { recordOffersShown } from "../analytics/record";
import { explicitContext, resolveCheckoutCustomer } from "../checkout/resolve";
import { logField } from "../middleware/logger";
import { rankOffers } from "../personalization/offers";
import { errorResponses, MERCHANT_ERRORS } from "../schemas/common";
import { OffersResponse, PersonalizeQuery } from "../schemas/personalization";
import { merchantSecurity } from "../schemas/security";
import { personalize } from "./methods";

const route = createRoute({
  method: "get",
  path: "/v1/personalize/offers",
  operationId: "getOffers",
  tags: ["Personalization"],
  summary: "The merchant's active offers that fit the context, ranked by expected value to the customer",
  security: merchantSecurity,
  request: { query: PersonalizeQuery },
  responses: {
    200: { description: "Offers, most valuable first", content: { "application/json": { schema: OffersResponse } } },
    ...errorResponses(...MERCHANT_ERRORS),
  },
});

export function registerOffersRoutes(app: App): void {
  app.openapi(route, async (c) => {
    const query = c.req.valid("query");
    const merchant = c.get("merchant");
    if (!merchant.features.targeted_offers) {
      // The same key, customer and session rules as with offers on: offers_disabled is an answer,
      // not a way around them (a garbled client_secret is still 401, a missing customer_id 400).
      explicitContext(query, await resolveCheckoutCustomer(c, query));
      logField(c, "fallback_reason", "offers_disabled");
      return c.json({ offers: [], personalized: false, fallback_reason: "offers_disabled" as const }, 200);
    }
    const { result, context, nowMs, customerRef: ref } = await personalize(c, query);
    // Offers of methods that are not in the answer (unavailable here, or excluded) never show.
    const offers = rankOffers(merchant.offers, result.probabilities, context, new Date(nowMs).toISOString(), result.fallback_reason === "guest" ? "popularity" : "expected_value");
    logField(c, "offers_shown", offers.map((o) => o.offer_id));
    // A HEAD answer shows no offer (it has no body): no impressions (see /methods).
    if (c.req.method !== "HEAD") recordOffersShown(c.env, c.executionCtx, c.get("requestId"), { merchant_id: merchant.merchant_id, customer_ref: ref, shown_at: new Date(nowMs).toISOString(), offer_ids: offers.map((o) => o.offer_id) });
    return c.json({ offers, personalized: result.personalized, ...(result.fallback_reason ? { fallback_reason: result.fallback_reason } : {}) }, 200);
  });
}
