import { createRoute } from "@hono/zod-openapi";
import { customerRef } from "../crypto/pseudonym";
import type { App } from "../env";
import { logField } from "../middleware/logger";
import { errorResponses, MERCHANT_ERRORS } from "../schemas/common";
import { ConsentResponse, CustomerQuery } from "../schemas/personalization";
import { merchantSecurity } from "../schemas/security";
import { CONSENT_LIST_MAX, listConsent } from "../storage/consent";

const route = createRoute({
  method: "get",
  path: "/v1/personalize/consent",
  operationId: "getConsent",
  tags: ["Preferences"],
  summary: "The customer's consent log at this merchant, oldest first",
  description: `The newest ${CONSENT_LIST_MAX} changes at most (\`truncated\` says whether older ones were left out; the export has the whole log).`,
  security: merchantSecurity,
  request: { query: CustomerQuery },
  responses: {
    200: { description: "Consent changes", content: { "application/json": { schema: ConsentResponse } } },
    ...errorResponses(...MERCHANT_ERRORS),
  },
});

export function registerConsentRoutes(app: App): void {
  app.openapi(route, async (c) => {
    const ref = await customerRef(c.env.PII_KEY, c.req.valid("query").customer_id);
    logField(c, "customer_ref", ref);
    // Kept (and shown) while a deletion is pending: the log is the merchant's proof of consent (API.md §3).
    return c.json(await listConsent(c.env.DB, c.get("merchant").merchant_id, ref), 200);
  });
}
