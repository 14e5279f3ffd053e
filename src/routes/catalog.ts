import { createRoute, z } from "@hono/zod-openapi";
import { CATALOG } from "../catalog/methods";
import type { App } from "../env";
import { Country, Currency, errorResponses, MERCHANT_ERRORS, MerchantQuery, MethodId } from "../schemas/common";
import { merchantSecurity } from "../schemas/security";

const CatalogEntry = z
  .object({
    method_id: MethodId,
    name: z.string(),
    kind: z.enum(["card", "wallet", "bnpl", "bank_transfer", "bank_debit", "local"]),
    countries: z.union([z.array(Country), z.literal("*")]),
    currencies: z.union([z.array(Currency), z.literal("*")]),
    device_types: z.array(z.enum(["mobile", "desktop", "tablet"])),
    amount_limits: z.record(z.string(), z.object({ min: z.number().optional(), max: z.number().optional() })).optional(),
    enabled: z.boolean().openapi({ description: "Whether the calling merchant enables it" }),
  })
  .openapi("CatalogMethod", {
    example: { method_id: "apple_pay", name: "Apple Pay", kind: "wallet", countries: "*", currencies: "*", device_types: ["mobile", "tablet", "desktop"], enabled: true },
  });

const route = createRoute({
  method: "get",
  path: "/v1/payment-methods",
  operationId: "getPaymentMethods",
  tags: ["Catalog"],
  summary: "The payment-method catalog and where each method is available",
  security: merchantSecurity,
  request: { query: MerchantQuery },
  responses: {
    200: { description: "The catalog", content: { "application/json": { schema: z.object({ methods: z.array(CatalogEntry) }).openapi("Catalog") } } },
    ...errorResponses(...MERCHANT_ERRORS),
  },
});

export function registerCatalogRoutes(app: App) {
  app.openapi(route, (c) => {
    const enabled = new Set(c.get("merchant").methods);
    const methods = CATALOG.map((m) => ({
      method_id: m.id,
      name: m.name,
      kind: m.kind,
      countries: m.countries === "*" ? ("*" as const) : [...m.countries],
      currencies: m.currencies === "*" ? ("*" as const) : [...m.currencies],
      device_types: [...m.devices],
      ...(m.amount ? { amount_limits: { ...m.amount } } : {}),
      enabled: enabled.has(m.id),
    }));
    return c.json({ methods }, 200);
  });
}
