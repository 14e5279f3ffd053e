import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { customerRef } from "../crypto/pseudonym";
import type { App, AppEnv } from "../env";
import { ApiError, validationError } from "../errors";
import { logField, logRequestError } from "../middleware/logger";
import { mergePreferences, namesMethodFields, type PreferenceValues, preferenceProblems } from "../personalization/preferences";
import { errorResponses, jsonResponse, MERCHANT_ERRORS, MerchantQuery } from "../schemas/common";
import { CustomerQuery, PreferencesPut, PreferencesUpdated, PreferencesView } from "../schemas/personalization";
import { merchantSecurity } from "../schemas/security";
import { crossMerchantPeers, PEERS_LEFT_NOTE } from "../storage/consent";
import { DEFAULT_PREFERENCES, type PreferencesPatch, readPreferences, savePreferences, type StoredPreferences } from "../storage/preferences";
import { invalidateProfile, refreshProfile } from "../storage/profile";


const getRoute = createRoute({
  method: "get",
  path: "/v1/personalize/preferences",
  operationId: "getPreferences",
  tags: ["Preferences"],
  summary: "A customer's preferences at this merchant (defaults when none are stored)",
  security: merchantSecurity,
  request: { query: CustomerQuery },
  responses: { 200: jsonResponse(PreferencesView, "The preferences"), ...errorResponses(...MERCHANT_ERRORS) },
});

const putRoute = createRoute({
  method: "put",
  path: "/v1/personalize/preferences",
  operationId: "putPreferences",
  tags: ["Preferences"],
  summary: "Change a customer's preferences (fields left out keep their values)",
  security: merchantSecurity,
  request: { query: MerchantQuery, body: { content: { "application/json": { schema: PreferencesPut } }, required: true } },
  responses: { 200: jsonResponse(PreferencesUpdated, "Updated; the next /methods call sees the change"), ...errorResponses(...MERCHANT_ERRORS, 409, 413, 415) },
});

function view(customerId: string, merchantId: string, p: StoredPreferences | null) {
  if (!p) return { customer_id: customerId, merchant_id: merchantId, ...DEFAULT_PREFERENCES, favorite_methods: [], excluded_methods: [], created_at: null, updated_at: null, last_used_at: null };
  return { customer_id: customerId, merchant_id: merchantId, ...p };
}

/**
 * What a PUT writes. Normally the patch itself. While a deletion is pending the method fields were
 * validated against the defaults, so when the PUT sets any of them all three are written as that
 * validated set: a hidden default or exclusion never combines with them into a state nobody checked
 * (which a restore would bring back). Consent flags stay a patch, so an opt-out alone leaves the rest.
 */
function patchToStore(body: PreferencesPut, merged: PreferenceValues, pendingDeletion: boolean): PreferencesPatch {
  if (!pendingDeletion || !namesMethodFields(body)) return body;
  return { ...body, default_method: merged.default_method, favorite_methods: [...merged.favorite_methods], excluded_methods: [...merged.excluded_methods] };
}

/** The answer to a PUT during a pending deletion: the defaults with the change applied, dated now, as for a new customer. */
function asNewCustomer(body: PreferencesPut, merged: PreferenceValues, now: string): StoredPreferences {
  return {
    default_method: merged.default_method,
    favorite_methods: [...merged.favorite_methods],
    excluded_methods: [...merged.excluded_methods],
    personalization_enabled: body.personalization_enabled ?? DEFAULT_PREFERENCES.personalization_enabled,
    cross_merchant_consent: body.cross_merchant_consent ?? DEFAULT_PREFERENCES.cross_merchant_consent,
    created_at: now,
    updated_at: now,
    last_used_at: null,
  };
}

/**
 * Makes the change visible to the very next /methods call: rewrite this merchant's cached profile,
 * and when the PUT names cross-merchant consent, drop the caches of the merchants that may hold this
 * customer's counts from here. If the rewrite fails the entry is deleted instead (a miss reads D1).
 * When KV takes neither (it also refuses a second write to one key within a second: two quick PUTs
 * for one customer), the change is saved but a /methods could still read the old profile: the
 * answer is 503 UNAVAILABLE and the same PUT retried refreshes it (a retry changes nothing else, and
 * logs no second consent change).
 */
async function refreshCaches(c: Context<AppEnv>, merchantId: string, ref: string, dropPeers: boolean): Promise<void> {
  const merchant = c.get("merchant");
  const unavailable = (err: unknown) => {
    logRequestError(c, "cached profile could not be updated", err);
    return new ApiError("UNAVAILABLE", "The preferences are saved but the cached profile could not be updated yet; retry the same request");
  };
  try {
    await refreshProfile(c.env, merchantId, ref, merchant.features.cross_merchant);
  } catch (err) {
    logRequestError(c, "profile refresh failed", err);
    await invalidateProfile(c.env, merchantId, ref).catch((e: unknown) => {
      throw unavailable(e);
    });
  }
  if (dropPeers) {
    const { peers, complete } = await crossMerchantPeers(c.env.DB, merchantId, ref);
    if (!complete) logField(c, "cache_peers_left", PEERS_LEFT_NOTE);
    await Promise.all(peers.map((peer) => invalidateProfile(c.env, peer, ref))).catch((e: unknown) => {
      throw unavailable(e);
    });
  }
}

/** Rounds of read, judge, write before a PUT that keeps meeting concurrent changes gives up (409). */
const SAVE_ATTEMPTS = 3;

/**
 * Reads the stored row, judges the change on the merged result and writes it while the method
 * fields and the deletion state are still the ones judged (storage/preferences.ts savePreferences);
 * when a concurrent PUT, DELETE or restore changed them in between, all of it again on the new state.
 */
async function judgeAndSave(c: Context<AppEnv>, body: PreferencesPut, ref: string) {
  const merchant = c.get("merchant");
  for (let attempt = 1; ; attempt++) {
    const { preferences: stored, pendingDeletion } = await readPreferences(c.env.DB, merchant.merchant_id, ref);
    // While a deletion is pending the stored row is hidden (API.md §3): the change is judged and
    // answered as for a new customer, so no stored value leaks through the response.
    const visible = pendingDeletion ? null : stored;
    const merged = mergePreferences(visible ?? DEFAULT_PREFERENCES, body);
    const problems = preferenceProblems(body, merged, merchant.methods);
    if (problems.length > 0) throw validationError(problems);

    const now = new Date().toISOString();
    // Still stored (an opt-out must always be recordable); consent is logged against the stored value.
    const saved = await savePreferences(c.env.DB, merchant.merchant_id, ref, patchToStore(body, merged, pendingDeletion), now, stored ?? DEFAULT_PREFERENCES, pendingDeletion);
    if (saved) return { stored, saved, merged, pendingDeletion, now };
    if (attempt >= SAVE_ATTEMPTS) {
      throw new ApiError("CONFLICT", "The customer's preferences are being changed by other requests at the same time; nothing was changed, retry");
    }
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
    const { stored, saved, merged, pendingDeletion, now } = await judgeAndSave(c, body, ref);
    // Either consent decides whether this merchant's counts reach the customer's other merchants
    // (storage/profile.ts cross). A PUT naming one drops the peers' caches even when the value is
    // unchanged: that is how a retry after a 503 finishes the work of the first attempt.
    const sharingChanged = stored
      ? stored.cross_merchant_consent !== saved.cross_merchant_consent || stored.personalization_enabled !== saved.personalization_enabled
      : saved.cross_merchant_consent;
    const namesSharing = body.cross_merchant_consent !== undefined || body.personalization_enabled !== undefined;
    await refreshCaches(c, merchant.merchant_id, ref, sharingChanged || namesSharing);
    const answer = pendingDeletion ? asNewCustomer(body, merged, now) : saved;
    return c.json({ updated: true as const, preferences: view(body.customer_id, merchant.merchant_id, answer) }, 200);
  });
}
