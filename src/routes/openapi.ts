import { Scalar } from "@scalar/hono-api-reference";
import type { App } from "../env";
import { securitySchemes } from "../schemas/security";

export const OPENAPI_PATH = "/v1/openapi.json";

/** The OpenAPI 3.1 document, generated from the route schemas that validate requests, and its reference page. */
export function registerOpenApiRoutes(app: App) {
  for (const [name, scheme] of Object.entries(securitySchemes)) {
    app.openAPIRegistry.registerComponent("securitySchemes", name, scheme);
  }
  app.doc31(OPENAPI_PATH, (c) => ({
    openapi: "3.1.0",
    info: {
      title: "Tap2 Personalize API",
      version: "1.0.0",
      description:
        "Tells a checkout which payment methods to show first for this customer, device, country and basket, and learns from what the customer pays with. Errors share one body: {error: {code, message, request_id, documentation_url, details?}}.",
    },
    servers: [{ url: new URL(c.req.url).origin }],
  }));
  app.get("/docs", Scalar({ url: OPENAPI_PATH, pageTitle: "Tap2 Personalize API reference" }));
}
