import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { customerRef } from "../crypto/pseudonym";
import type { App, AppEnv } from "../env";
import { validationError } from "../errors";
import { logField } from "../middleware/logger";
import { mergePreferences, preferenceProblems } from "../personalization/preferences";
import { ApiKeyQuery, errorResponses, MERCHANT_ERRORS, MerchantId } from "../schemas/common";
import { CustomerQuery, PreferencesPut, PreferencesUpdated, PreferencesView } from "../schemas/personalization";
import { merchantSecurity } from "../schemas/security";
import { crossMerchantPeers } from "../storage/consent";
import { DEFAULT_PREFERENCES, readPreferences, savePreferences, type StoredPreferences } from "../storage/preferences";
import { invalidateProfile, refreshProfile } from "../storage/profile";

const json = <T,>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });

/** The PUT names its customer in the body; the query carries only what every merchant route accepts. */
const PutQuery = z.strictObject({ merchant_id: MerchantId.optional(), api_key: ApiKeyQuery });

const getRoute = createRoute({
  method: "get",
  path: "/v1/personalize/preferences",
  operationId: "getPreferences",
  tags: ["Preferences"],
  summary: "A customer's preferences at this merchant (defaults when none are stored)",
  security: merchantSecurity,
  request: { query: CustomerQuery },
  responses: { 200: json(PreferencesView, "The preferences"), ...errorResponses(...MERCHANT_ERRORS) },
});

const putRoute = createRoute({
  method: "put",
  path: "/v1/personalize/preferences",
  operationId: "putPreferences",
  tags: ["Preferences"],
  summary: "Change a customer's preferences (fields left out keep their values)",
  security: merchantSecurity,
  request: { query: PutQuery, body: { content: { "application/json": { schema: PreferencesPut } }, required: true } },
  responses: { 200: json(PreferencesUpdated, "Updated; the next /methods call sees the change"), ...errorResponses(...MERCHANT_ERRORS, 413, 415) },
});

function view(customerId: string, merchantId: string, p: StoredPreferences | null) {
  if (!p) return { customer_id: customerId, merchant_id: merchantId, ...DEFAULT_PREFERENCES, favorite_methods: [], excluded_methods: [], created_at: null, updated_at: null, last_used_at: null };
  return { customer_id: customerId, merchant_id: merchantId, ...p };
}

/**
 * Makes the change visible to the very next /methods call: rewrite this merchant's cached profile,
 * and when cross-merchant consent changed, drop the caches of the merchants that may hold this
 * customer's counts from here. If the rewrite fails the entry is deleted instead (a miss reads D1).
 */
async function refreshCaches(c: Context<AppEnv>, merchantId: string, ref: string, crossChanged: boolean): Promise<void> {
  const merchant = c.get("merchant");
  try {
    await refreshProfile(c.env, merchantId, ref, merchant.features.cross_merchant);
  } catch (err) {
    console.error(JSON.stringify({ level: "error", request_id: c.get("requestId"), message: "profile refresh failed", error: String(err) }));
    await invalidateProfile(c.env, merchantId, ref);
  }
  if (crossChanged) {
    const peers = await crossMerchantPeers(c.env.DB, merchantId, ref);
    await Promise.all(peers.map((peer) => invalidateProfile(c.env, peer, ref)));
  }
}

export function registerPreferencesRoutes(app: App): void {
  app.openapi(getRoute, async (c) => {
    const { customer_id } = c.req.valid("query");
    const merchantId = c.get("merchant").merchant_id;
    const ref = await customerRef(c.env.PII_KEY, customer_id);
    logField(c, "customer_ref", ref);
    const { preferences, pendingDeletion } = await readPreferences(c.env.DB, merchantId, ref);
    // A customer whose deletion is pending reads as defaults (API.md §3).
    return c.json(view(customer_id, merchantId, pendingDeletion ? null : preferences), 200);
  });

  app.openapi(putRoute, async (c) => {
    const body = c.req.valid("json");
    const merchant = c.get("merchant");
    const ref = await customerRef(c.env.PII_KEY, body.customer_id);
    logField(c, "customer_ref", ref);
    const { preferences: current } = await readPreferences(c.env.DB, merchant.merchant_id, ref);
    const merged = mergePreferences(current ?? DEFAULT_PREFERENCES, body);
    const problems = preferenceProblems(body, merged, merchant.methods);
    if (problems.length > 0) throw validationError(problems);

    const saved = await savePreferences(c.env.DB, merchant.merchant_id, ref, body, new Date().toISOString());
    const crossChanged = current ? current.cross_merchant_consent !== saved.cross_merchant_consent : saved.cross_merchant_consent;
    await refreshCaches(c, merchant.merchant_id, ref, crossChanged);
    return c.json({ updated: true as const, preferences: view(body.customer_id, merchant.merchant_id, saved) }, 200);
  });
}
