import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { customerRef } from "../crypto/pseudonym";
import type { App, AppEnv } from "../env";
import { ApiError } from "../errors";
import { errorText } from "../log";
import { logField } from "../middleware/logger";
import { errorResponses, jsonResponse, MERCHANT_ERRORS, MerchantId } from "../schemas/common";
import { CustomerExport, CustomerPath, CustomerQuery, CustomerRestored, DeletionAccepted } from "../schemas/customers";
import { merchantSecurity } from "../schemas/security";
import { crossMerchantPeers, PEERS_LEFT_NOTE } from "../storage/consent";
import { type AuditStamp, cancelDeletion, recordAudit, requestDeletion } from "../storage/deletions";
import { type CustomerData, readCustomerData } from "../storage/export";
import { invalidateProfile } from "../storage/profile";
import { noBody } from "../validation";

const security = merchantSecurity;
const tags = ["Customer data rights"];
const request = { params: CustomerPath, query: CustomerQuery };
/** DELETE and restore take no body; `merchant_id` may come in it (API.md §1), nothing else. */
const middleware = noBody(z.strictObject({ merchant_id: MerchantId.optional() }));

const deleteCustomer = createRoute({
  method: "delete", path: "/v1/personalize/customers/{customer_id}", operationId: "deleteCustomer", tags, security,
  summary: "Request erasure of a customer's data (purged after a 30-day grace period)",
  description: "From now on nothing of this customer is used or returned. Idempotent: a repeated request keeps the first purge_after. Accepted for any customer id, known or not.",
  request,
  middleware,
  responses: { 202: jsonResponse(DeletionAccepted, "Erasure scheduled"), ...errorResponses(...MERCHANT_ERRORS) },
});

const restoreCustomer = createRoute({
  method: "post", path: "/v1/personalize/customers/{customer_id}/restore", operationId: "restoreCustomer", tags, security,
  summary: "Cancel a pending erasure within its grace period",
  request,
  middleware,
  responses: { 200: jsonResponse(CustomerRestored, "Restored; the data is used again"), ...errorResponses(...MERCHANT_ERRORS, 404) },
});

const exportCustomer = createRoute({
  method: "get", path: "/v1/personalize/customers/{customer_id}/export", operationId: "exportCustomer", tags, security,
  summary: "Everything stored about a customer at this merchant (machine-readable)",
  description: "Preferences, usage events, derived usage counts, the consent log, the raw analytics facts (decisions, conversions, offer impressions) and messages about the customer that could not be written yet. Works during the grace period; after the purge only the consent log remains.",
  request,
  responses: { 200: jsonResponse(CustomerExport, "The customer's data"), ...errorResponses(...MERCHANT_ERRORS) },
});

/** The customer's pseudonym and the audit stamp of this request (`actor`: the API key's key_id, or `admin`). */
async function subject(c: Context<AppEnv>, customerId: string, actor: string): Promise<{ ref: string; stamp: AuditStamp }> {
  const ref = await customerRef(c.env.PII_KEY, customerId);
  logField(c, "customer_ref", ref);
  return { ref, stamp: { actor, requestId: c.get("requestId"), at: new Date().toISOString() } };
}

/**
 * Drops every cached profile that may carry this customer's data: here and at every merchant reading
 * it cross-merchant (all of them, paged: crossMerchantPeers, up to MAX_PEER_PROFILES, which KV's
 * 1,000 operations per invocation bound; any past that are logged, and use the customer's counts
 * for CROSS_MERCHANT_FRESH_MS at most, as every cached cross-merchant part).
 * After a deletion a stale entry would still show the customer's data, so a KV failure is a 503 (the
 * request is idempotent: a retry clears again). After a restore a stale entry only keeps the
 * customer hidden until its TTL (300 s), so the failure is logged and the restore still answers 200.
 */
async function clearProfiles(c: Context<AppEnv>, merchantId: string, ref: string, firstPeerPage: string[], mustSucceed: boolean): Promise<void> {
  try {
    const { peers, complete } = await crossMerchantPeers(c.env.DB, merchantId, ref, { firstPage: firstPeerPage });
    if (!complete) logField(c, "cache_peers_left", PEERS_LEFT_NOTE);
    await Promise.all([merchantId, ...peers].map((m) => invalidateProfile(c.env, m, ref)));
  } catch (err) {
    logField(c, "cache_error", errorText(err));
    if (mustSucceed) throw new ApiError("UNAVAILABLE", "The deletion is recorded but cached data could not be cleared yet; retry the same request");
  }
}

/**
 * The three data-rights operations, for the merchant routes below (the id in the path, the actor the
 * key) and for the admin routes of the two legacy ids a path cannot carry (src/routes/adminCustomers.ts).
 */
export async function eraseCustomer<Id extends string>(c: Context<AppEnv>, merchantId: string, customer_id: Id, actor: string) {
  const { ref, stamp } = await subject(c, customer_id, actor);
  const result = await requestDeletion(c.env.DB, merchantId, ref, stamp);
  await clearProfiles(c, merchantId, ref, result.firstPeerPage, true);
  logField(c, "deletion", result.created ? "requested" : "already_pending");
  return { customer_id, status: "pending_deletion" as const, purge_after: result.purge_after };
}

export async function restoreCustomerData<Id extends string>(c: Context<AppEnv>, merchantId: string, customer_id: Id, actor: string) {
  const { ref, stamp } = await subject(c, customer_id, actor);
  const result = await cancelDeletion(c.env.DB, merchantId, ref, stamp);
  if (!result.restored) {
    throw new ApiError("NOT_FOUND", "No pending deletion for this customer: never deleted, already restored, or purged");
  }
  await clearProfiles(c, merchantId, ref, result.firstPeerPage, false);
  return { customer_id, status: "active" as const };
}

export async function exportCustomerData<Id extends string>(c: Context<AppEnv>, merchantId: string, customer_id: Id, actor: string): Promise<Omit<z.infer<typeof CustomerExport>, "customer_id"> & { customer_id: Id }> {
  const { ref, stamp } = await subject(c, customer_id, actor);
  const data = await readCustomerData(c.env.DB, merchantId, ref);
  await recordAudit(c.env.DB, merchantId, ref, "export", stamp);
  // A purged customer who came back (paid, or set preferences, after the purge) is active again:
  // "purged" says the erasable data is gone, so it is only said while none has been stored since.
  const status = !data.deletion ? "active" : data.deletion.status === "pending" ? "pending_deletion" : holdsErasableData(data) ? "active" : "purged";
  return {
    customer_id,
    merchant_id: merchantId,
    exported_at: stamp.at,
    status,
    purge_after: data.deletion?.status === "pending" ? data.deletion.purge_after : null,
    preferences: data.preferences,
    usage_events: data.usage_events,
    usage_summary: data.usage_summary,
    consent_log: data.consent_log,
    analytics: data.analytics,
    // The export speaks the merchant's ids: the pseudonym inside a stored message body becomes the customer id.
    undelivered_messages: data.undelivered_messages.map((l) => ({ ...l, body: l.body.replaceAll(ref, customer_id) })),
  } as Omit<z.infer<typeof CustomerExport>, "customer_id"> & { customer_id: Id };
}

export function registerCustomersRoutes(app: App): void {
  app.openapi(deleteCustomer, async (c) => {
    return c.json(await eraseCustomer(c, c.get("merchant").merchant_id, c.req.valid("param").customer_id, c.get("apiKey").key_id), 202);
  });

  app.openapi(restoreCustomer, async (c) => {
    return c.json(await restoreCustomerData(c, c.get("merchant").merchant_id, c.req.valid("param").customer_id, c.get("apiKey").key_id), 200);
  });

  app.openapi(exportCustomer, async (c) => {
    return c.json(await exportCustomerData(c, c.get("merchant").merchant_id, c.req.valid("param").customer_id, c.get("apiKey").key_id), 200);
  });
}

/** Whether the export holds any of the rows a purge erases (everything but the consent log). */
function holdsErasableData(data: CustomerData): boolean {
  const { decisions, conversions, offer_impressions } = data.analytics;
  return data.preferences !== null || [data.usage_events, data.usage_summary, decisions, conversions, offer_impressions, data.undelivered_messages].some((rows) => rows.length > 0);
}
