import { createRoute, z } from "@hono/zod-openapi";
import type { App } from "../env";
import { ApiError } from "../errors";
import { logField } from "../middleware/logger";
import { ADMIN_ERRORS, errorResponses, jsonResponse, MerchantId, NoQuery } from "../schemas/common";
import { adminSecurity } from "../schemas/security";
import { checkOffersUseEnabledMethods, checkStoredRateLimit, DEFAULT_MERCHANT_PAGE, KeyCreate, KeyCreated, KeyView, MerchantCreate, MerchantList, MerchantListQuery, MerchantPatch, MerchantView } from "../schemas/merchant";
import { insertKey, listKeys, revokeKey } from "../storage/apiKeys";
import { etagOf, IfMatchHeaders, parseIfMatch } from "../schemas/etag";
import { insertMerchant, listMerchants, loadVersionedMerchant, type Merchant, updateMerchant } from "../storage/merchants";
import { noBody, zodDetails } from "../validation";
import { validationError } from "../errors";

const MerchantPath = z.strictObject({ merchant_id: MerchantId.openapi({ param: { name: "merchant_id", in: "path" } }) });
const KeyPath = z.strictObject({ key_id: z.string().regex(/^key_[A-Za-z0-9_-]{1,64}$/, "is not a key id").openapi({ param: { name: "key_id", in: "path" } }) });
const adminErrors = errorResponses(...ADMIN_ERRORS);
/** The merchant's version as an entity tag, on every answer that holds the merchant (and on a 412, the current one). */
const etagHeader = { ETag: { description: 'The merchant\'s version, e.g. "v7": send it back in If-Match to PATCH only that version', schema: { type: "string" as const }, example: '"v7"' } };
const withEtag = <T extends object>(response: T) => ({ ...response, headers: etagHeader });

const createMerchant = createRoute({
  method: "post", path: "/v1/admin/merchants", operationId: "createMerchant", tags: ["Admin"], security: adminSecurity, summary: "Create a merchant",
  request: { query: NoQuery, body: { content: { "application/json": { schema: MerchantCreate } }, required: true } },
  responses: { 201: withEtag(jsonResponse(MerchantView, "Created")), ...adminErrors, ...errorResponses(409) },
});
const listMerchantsRoute = createRoute({
  method: "get", path: "/v1/admin/merchants", operationId: "listMerchants", tags: ["Admin"], security: adminSecurity, summary: "List the merchants, a page at a time, in the order of their ids",
  request: { query: MerchantListQuery },
  responses: { 200: jsonResponse(MerchantList, "A page of merchants"), ...adminErrors },
});
const getMerchant = createRoute({
  method: "get", path: "/v1/admin/merchants/{merchant_id}", operationId: "getMerchant", tags: ["Admin"], security: adminSecurity, summary: "Read a merchant",
  request: { params: MerchantPath, query: NoQuery },
  responses: { 200: withEtag(jsonResponse(MerchantView, "The merchant")), ...adminErrors },
});
const patchMerchant = createRoute({
  method: "patch", path: "/v1/admin/merchants/{merchant_id}", operationId: "updateMerchant", tags: ["Admin"], security: adminSecurity, summary: "Update a merchant (effective within 60 s)",
  request: { params: MerchantPath, query: NoQuery, headers: IfMatchHeaders, body: { content: { "application/json": { schema: MerchantPatch } }, required: true } },
  responses: {
    200: withEtag(jsonResponse(MerchantView, "The updated merchant")), ...adminErrors, ...errorResponses(409),
    412: withEtag(errorResponses(412)[412]!),
  },
});
const createKey = createRoute({
  method: "post", path: "/v1/admin/merchants/{merchant_id}/keys", operationId: "createKey", tags: ["Admin"], security: adminSecurity, summary: "Create an API key (the plain key is shown only here)",
  request: { params: MerchantPath, query: NoQuery, body: { content: { "application/json": { schema: KeyCreate } }, required: true } },
  responses: { 201: jsonResponse(KeyCreated, "Created"), ...adminErrors },
});
const listMerchantKeys = createRoute({
  method: "get", path: "/v1/admin/merchants/{merchant_id}/keys", operationId: "listKeys", tags: ["Admin"], security: adminSecurity, summary: "List a merchant's keys (never a key or its hash)",
  request: { params: MerchantPath, query: NoQuery },
  responses: { 200: jsonResponse(z.object({ keys: z.array(KeyView) }).openapi("KeyList"), "The keys"), ...adminErrors },
});
const deleteKey = createRoute({
  method: "delete", path: "/v1/admin/keys/{key_id}", operationId: "revokeKey", tags: ["Admin"], security: adminSecurity, summary: "Revoke a key (effective within 60 s)",
  request: { params: KeyPath, query: NoQuery },
  middleware: noBody(),
  responses: { 204: { description: "Revoked" }, ...adminErrors },
});

/** The merchant with its row's version, or 404. */
async function mustLoad(db: D1Database, id: string): Promise<{ merchant: Merchant; version: number }> {
  const found = await loadVersionedMerchant(db, id);
  if (!found) throw new ApiError("NOT_FOUND", `No merchant ${id}`);
  return found;
}

export function registerAdminRoutes(app: App) {
  app.openapi(createMerchant, async (c) => {
    const body = c.req.valid("json");
    const now = new Date().toISOString();
    const merchant: Merchant = {
      merchant_id: body.merchant_id,
      name: body.name,
      tier: body.tier,
      methods: body.methods,
      allowed_origins: body.allowed_origins,
      rate_limit: body.rate_limit ?? null,
      holdout_percent: body.holdout_percent,
      features: body.features,
      offers: body.offers,
      scoring_weights: body.scoring_weights ?? {},
      created_at: now,
      updated_at: now,
    };
    if (!(await insertMerchant(c.env.DB, merchant))) throw new ApiError("CONFLICT", `Merchant ${body.merchant_id} already exists`);
    c.header("ETag", etagOf(0)); // a new row's version (migration 0013's default)
    return c.json(merchant, 201);
  });

  app.openapi(listMerchantsRoute, async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const { merchants, next } = await listMerchants(c.env.DB, limit ?? DEFAULT_MERCHANT_PAGE, cursor);
    return c.json({ merchants, next_cursor: next }, 200);
  });

  app.openapi(getMerchant, async (c) => {
    const found = await mustLoad(c.env.DB, c.req.valid("param").merchant_id);
    c.header("ETag", etagOf(found.version));
    return c.json(found.merchant, 200);
  });

  app.openapi(patchMerchant, async (c) => {
    const { merchant_id } = c.req.valid("param");
    const patch = c.req.valid("json");
    const ifMatch = c.req.valid("header")["if-match"];
    // Merged with the stored merchant as it is when written: a concurrent PATCH of another field is
    // kept, not overwritten (updateMerchant retries the merge when another write got in between).
    const result = await updateMerchant(c.env, merchant_id, (current) => {
      const next = {
        ...current,
        ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)),
        features: { ...current.features, ...Object.fromEntries(Object.entries(patch.features ?? {}).filter(([, v]) => v !== undefined)) },
      } as Merchant;
      // The merged result must still be consistent: offers may only use enabled methods, and a kept rate_limit must be valid.
      const check = z
        .object({})
        .superRefine((_, ctx) => {
          checkOffersUseEnabledMethods(next, ctx);
          if (patch.rate_limit === undefined) checkStoredRateLimit(next, ctx);
        })
        .safeParse({});
      if (!check.success) throw validationError(zodDetails(check.error));
      return next;
    }, ifMatch === undefined ? undefined : (parseIfMatch(ifMatch) ?? []));
    if (result.status === "not_found") throw new ApiError("NOT_FOUND", `No merchant ${merchant_id}`);
    if (result.status === "precondition_failed") {
      throw new ApiError("PRECONDITION_FAILED", `Merchant ${merchant_id} is at ${etagOf(result.version)}, which If-Match does not name: nothing was changed; read it again, apply your change to that and send its ETag`, undefined, { ETag: etagOf(result.version) });
    }
    if (result.status === "contended") throw new ApiError("CONFLICT", `Merchant ${merchant_id} is being changed by other requests at the same time; nothing was changed, retry`);
    // A PATCH that changes nothing (`{}`, or the current values) writes nothing and keeps updated_at ("unchanged").
    if (result.status === "updated" && !result.cacheCleared) logField(c, "cache_error", "cached merchant not dropped; the change takes effect within 60 s");
    c.header("ETag", etagOf(result.version));
    return c.json(result.merchant, 200);
  });

  app.openapi(createKey, async (c) => {
    const { merchant } = await mustLoad(c.env.DB, c.req.valid("param").merchant_id);
    const { type } = c.req.valid("json");
    const createdAt = new Date().toISOString();
    const { key, keyId } = await insertKey(c.env.DB, merchant.merchant_id, type, createdAt);
    return c.json({ key_id: keyId, key, type, merchant_id: merchant.merchant_id, created_at: createdAt }, 201);
  });

  app.openapi(listMerchantKeys, async (c) => {
    const { merchant } = await mustLoad(c.env.DB, c.req.valid("param").merchant_id);
    return c.json({ keys: await listKeys(c.env.DB, merchant.merchant_id) }, 200);
  });

  app.openapi(deleteKey, async (c) => {
    const { key_id } = c.req.valid("param");
    const revoked = await revokeKey(c.env, key_id, new Date().toISOString());
    if (!revoked) throw new ApiError("NOT_FOUND", `No key ${key_id}`);
    if (!revoked.cacheCleared) logField(c, "cache_error", "cached key not dropped; the revocation takes effect within 60 s");
    return c.body(null, 204);
  });
}
