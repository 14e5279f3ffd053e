import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { admin, api, BASE, createMerchant, expectError, uniqueMerchantId } from "../helpers/fixtures";
import { documentedOperations } from "../helpers/operations";

const validMerchant = (overrides: Record<string, unknown> = {}) => ({
  merchant_id: uniqueMerchantId(),
  name: "Shop",
  tier: "starter",
  methods: ["visa", "paypal"],
  ...overrides,
});

describe("admin auth", () => {
  it("401 INVALID_ADMIN_TOKEN for a missing or wrong token", async () => {
    await expectError(await api(null, "/v1/admin/merchants/m_x"), 401, "INVALID_ADMIN_TOKEN");
    const res = await api(null, "/v1/admin/merchants/m_x", { headers: { Authorization: "Bearer wrong" } });
    await expectError(res, 401, "INVALID_ADMIN_TOKEN");
  });

  it("a merchant key is not an admin token", async () => {
    const m = await createMerchant();
    const res = await api(null, `/v1/admin/merchants/${m.merchantId}`, { headers: { Authorization: `Bearer ${m.secretKey}` } });
    await expectError(res, 401, "INVALID_ADMIN_TOKEN");
  });

  it("every admin route is 404 when ADMIN_TOKEN is not set", async () => {
    const noToken = { ...env, ADMIN_TOKEN: undefined };
    // Every admin operation of the worker's own OpenAPI document (dead-letter routes included).
    const routes = documentedOperations()
      .filter((op) => op.admin)
      .map((op) => [op.method.toUpperCase(), op.path.replace(/\{[^}]+\}/g, "1")] as const);
    expect(routes.map(([, path]) => path)).toEqual(expect.arrayContaining(["/v1/admin/merchants/1", "/v1/admin/merchants", "/v1/admin/keys/1", "/v1/admin/dead-letters", "/v1/admin/dead-letters/redrive"]));
    for (const [method, path] of routes) {
      const ctx = createExecutionContext();
      const res = await worker.fetch(new Request(`${BASE}${path}`, { method, headers: { Authorization: "Bearer anything" } }), noToken, ctx);
      await waitOnExecutionContext(ctx);
      await expectError(res, 404, "NOT_FOUND");
    }
  });
});

describe("merchants", () => {
  it("creates a merchant with defaults and reads it back", async () => {
    const body = validMerchant();
    const res = await admin("/v1/admin/merchants", { method: "POST", body: JSON.stringify(body) });
    expect(res.status).toBe(201);
    const created = await res.json<Record<string, unknown>>();
    expect(created).toMatchObject({
      merchant_id: body.merchant_id, tier: "starter", methods: ["visa", "paypal"], allowed_origins: [], holdout_percent: 0,
      rate_limit: null, features: { targeted_offers: false, cross_merchant: false, visitor_limit: false }, offers: [],
    });
    const read = await admin(`/v1/admin/merchants/${body.merchant_id}`);
    expect(read.status).toBe(200);
    expect(await read.json()).toEqual(created);
  });

  it("400 for text with a lone surrogate (D1 would store it altered) and for an offer's empty or repeating countries or device_types list", async () => {
    const m = await createMerchant();
    // Sent as JSON text: a lone surrogate is a valid JSON escape but no character.
    for (const body of ['{"name":"Shop \\ud800"}', '{"offers":[{"offer_id":"o1","method_id":"visa","title":"Save \\udc00","discount_type":"fixed","discount_value":100}]}']) {
      const res = await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body });
      const err = await expectError(res, 400, "VALIDATION_ERROR");
      expect(err.error.details?.[0]?.message).toBe("must be well-formed Unicode (no lone surrogate)");
    }
    expect((await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: '{"name":"Shop \\ud83d\\ude00"}' })).status).toBe(200); // a pair is a character
    const offer = { offer_id: "o2", method_id: "visa", title: "Save", discount_type: "fixed", discount_value: 100 };
    for (const [field, message] of [["countries", "omit countries to show the offer in every country"], ["device_types", "omit device_types to show the offer on every device"]] as const) {
      const res = await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ offers: [{ ...offer, [field]: [] }] }) });
      const err = await expectError(res, 400, "VALIDATION_ERROR");
      expect(err.error.details).toContainEqual({ path: `offers.0.${field}`, message });
    }
    for (const [field, values] of [["countries", ["NL", "DE", "NL"]], ["device_types", ["mobile", "mobile"]]] as const) {
      const res = await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ offers: [{ ...offer, [field]: values }] }) });
      const err = await expectError(res, 400, "VALIDATION_ERROR");
      expect(err.error.details).toContainEqual({ path: `offers.0.${field}`, message: "must not contain duplicates" });
    }
  });

  it("scoring_weights: a misspelt key or a value out of its range is a 400 naming it (API.md §1: typos surface); known keys in range are stored", async () => {
    const m = await createMerchant();
    const patch = (scoring_weights: unknown) => admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ scoring_weights }) });
    const typo = await expectError(await patch({ temprature: 1.1 }), 400, "VALIDATION_ERROR");
    expect(typo.error.details?.map((d) => d.path)).toContain("scoring_weights.temprature");
    const range = await expectError(await patch({ temperature: 999 }), 400, "VALIDATION_ERROR");
    expect(range.error.details?.map((d) => d.path)).toEqual(["scoring_weights.temperature"]);
    await expectError(await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: '{"scoring_weights":{"__proto__":5}}' }), 400, "VALIDATION_ERROR");
    const ok = await patch({ temperature: 1.1, default_boost: -2 });
    expect(ok.status).toBe(200);
    expect((await ok.json<{ scoring_weights: unknown }>()).scoring_weights).toEqual({ temperature: 1.1, default_boost: -2 });
  });

  it("a merchant stored before those rules (a misspelt weight, one out of range, an offer with countries []) reads back in the published Merchant schema", async () => {
    const { MerchantView } = await import("../../src/schemas/merchant");
    const m = await createMerchant();
    const offer = { offer_id: "old_offer", method_id: "visa", title: "Old", description: "", discount_type: "percent", discount_value: 5, countries: [] };
    await env.DB.prepare("UPDATE merchants SET config = json_set(config, '$.scoring_weights', json(?), '$.offers', json(?)) WHERE id = ?")
      .bind(JSON.stringify({ temprature: 1.2, temperature: 999 }), JSON.stringify([offer]), m.merchantId)
      .run();
    const res = await admin(`/v1/admin/merchants/${m.merchantId}`);
    expect(res.status).toBe(200);
    const parsed = MerchantView.safeParse(await res.json());
    expect(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`)).toEqual([]);
    // A PATCH of another field keeps them and answers 200.
    expect((await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ name: "Renamed" }) })).status).toBe(200);
  });

  it("lists merchants a page at a time in the order of their ids; every merchant once, as GET shows it", async () => {
    const prefix = `m_list_${Date.now().toString(36)}`;
    const ids = ["c", "a", "e", "b", "d"].map((x) => `${prefix}_${x}`);
    for (const id of ids) await createMerchant({ merchant_id: id });
    // Walk every page from just before the prefix (other tests' merchants come before or after it).
    const seen: Record<string, unknown>[] = [];
    let cursor: string | null = `${prefix}`;
    let pages = 0;
    while (cursor !== null && pages < 10) {
      const res = await admin(`/v1/admin/merchants?limit=2&cursor=${cursor}`);
      expect(res.status).toBe(200);
      const page = await res.json<{ merchants: Record<string, unknown>[]; next_cursor: string | null }>();
      expect(page.merchants.length).toBeLessThanOrEqual(2);
      seen.push(...page.merchants.filter((m) => String(m.merchant_id).startsWith(prefix)));
      if (page.merchants.some((m) => !String(m.merchant_id).startsWith(prefix))) break; // past the prefix
      cursor = page.next_cursor;
      if (cursor !== null) expect(cursor).toBe(page.merchants.at(-1)!.merchant_id);
      pages += 1;
    }
    expect(seen.map((m) => m.merchant_id)).toEqual([...ids].sort());
    expect(seen[0]).toEqual(await (await admin(`/v1/admin/merchants/${ids.sort()[0]}`)).json());
  });

  it("merchants . and .. stored before those ids were refused stay in the list, and a page ending at one leads on (the cursor is a query value)", async () => {
    const config = { methods: ["visa"], allowed_origins: [], rate_limit: null, holdout_percent: 0, features: { targeted_offers: false, cross_merchant: false }, offers: [], scoring_weights: {} };
    for (const id of [".", ".."]) {
      await env.DB.prepare("INSERT INTO merchants (id, name, tier, config, created_at, updated_at) VALUES (?, 'Dots', 'starter', ?, '2026-01-05T10:00:00.000Z', '2026-01-05T10:00:00.000Z')")
        .bind(id, JSON.stringify(config))
        .run();
    }
    // "-" sorts just before ".", and every id this file creates after "..".
    const first = await admin("/v1/admin/merchants?limit=1&cursor=-");
    expect(await first.json()).toMatchObject({ merchants: [{ merchant_id: "." }], next_cursor: "." });
    const second = await admin("/v1/admin/merchants?limit=1&cursor=.");
    expect(second.status).toBe(200);
    expect((await second.json<{ merchants: { merchant_id: string }[] }>()).merchants.map((m) => m.merchant_id)).toEqual([".."]);
    const third = await admin("/v1/admin/merchants?limit=1&cursor=..");
    expect(third.status).toBe(200);
    expect((await third.json<{ merchants: { merchant_id: string }[] }>()).merchants.map((m) => m.merchant_id)).not.toContain("..");
    // Their paths cannot name them: URL parsing removes the dot segment before routing.
    expect((await admin("/v1/admin/merchants/..")).status).not.toBe(200);
    await env.DB.prepare("DELETE FROM merchants WHERE id IN ('.', '..')").run();
  });

  it("the merchant list: default page of 20, next_cursor null on the last page, bad limit or cursor 400", async () => {
    const first = await (await admin("/v1/admin/merchants")).json<{ merchants: unknown[]; next_cursor: string | null }>();
    expect(first.merchants.length).toBeLessThanOrEqual(20);
    const last = await (await admin("/v1/admin/merchants?cursor=zzzz")).json<{ merchants: unknown[]; next_cursor: string | null }>();
    expect(last).toEqual({ merchants: [], next_cursor: null });
    for (const q of ["limit=0", "limit=101", "limit=abc", "cursor=", "cursor=bad%20id", "page=2"]) {
      await expectError(await admin(`/v1/admin/merchants?${q}`), 400, "VALIDATION_ERROR");
    }
  });

  it("409 CONFLICT for an existing id", async () => {
    const body = validMerchant();
    expect((await admin("/v1/admin/merchants", { method: "POST", body: JSON.stringify(body) })).status).toBe(201);
    await expectError(await admin("/v1/admin/merchants", { method: "POST", body: JSON.stringify(body) }), 409, "CONFLICT");
  });

  it("404 for an unknown merchant (read, patch, keys)", async () => {
    await expectError(await admin("/v1/admin/merchants/m_unknown"), 404, "NOT_FOUND");
    await expectError(await admin("/v1/admin/merchants/m_unknown", { method: "PATCH", body: "{}" }), 404, "NOT_FOUND");
    await expectError(await admin("/v1/admin/merchants/m_unknown/keys", { method: "POST", body: '{"type":"secret"}' }), 404, "NOT_FOUND");
    await expectError(await admin("/v1/admin/keys/key_unknown", { method: "DELETE" }), 404, "NOT_FOUND");
  });

  it.each([
    ["merchant_id too long", { merchant_id: "m".repeat(129) }, "merchant_id"],
    ["merchant_id wrong charset", { merchant_id: "shop one" }, "merchant_id"],
    ["merchant_id wrong type", { merchant_id: 42 }, "merchant_id"],
    ["tier unknown", { tier: "platinum" }, "tier"],
    ["method not in catalog", { methods: ["visa", "bitcoin"] }, "methods.1"],
    ["methods duplicated", { methods: ["visa", "visa"] }, "methods"],
    ["methods empty", { methods: [] }, "methods"],
    ["holdout over 50", { holdout_percent: 51 }, "holdout_percent"],
    ["origin with a path", { allowed_origins: ["https://shop.example/checkout"] }, "allowed_origins.0"],
    ["rate_limit missing burst", { rate_limit: { requests_per_hour: 10 } }, "rate_limit.burst"],
    ["rate_limit burst over requests_per_hour", { rate_limit: { requests_per_hour: 100, burst: 101 } }, "rate_limit.burst"],
    ["rate_limit requests_per_hour zero", { rate_limit: { requests_per_hour: 0, burst: 1 } }, "rate_limit.requests_per_hour"],
    ["rate_limit requests_per_hour over 10,000,000", { rate_limit: { requests_per_hour: 10_000_001, burst: 1 } }, "rate_limit.requests_per_hour"],
    ["rate_limit requests_per_hour fractional", { rate_limit: { requests_per_hour: 100.5, burst: 1 } }, "rate_limit.requests_per_hour"],
    ["rate_limit requests_per_hour a string", { rate_limit: { requests_per_hour: "100", burst: 1 } }, "rate_limit.requests_per_hour"],
    ["rate_limit burst zero", { rate_limit: { requests_per_hour: 100, burst: 0 } }, "rate_limit.burst"],
    ["rate_limit burst negative", { rate_limit: { requests_per_hour: 100, burst: -5 } }, "rate_limit.burst"],
    ["rate_limit burst over 1,000,000", { rate_limit: { requests_per_hour: 10_000_000, burst: 1_000_001 } }, "rate_limit.burst"],
    ["unknown field", { colour: "blue" }, "colour"],
    ["name too long", { name: "n".repeat(201) }, "name"],
    ["offer on a method not enabled", { offers: [{ offer_id: "o1", method_id: "klarna", title: "t", discount_type: "percent", discount_value: 5 }] }, "offers.0.method_id"],
    ["offer ending before it starts (milliseconds on one side only)", { offers: [{ offer_id: "o1", method_id: "visa", title: "t", discount_type: "percent", discount_value: 5, starts_at: "2026-02-01T00:00:00.500Z", ends_at: "2026-02-01T00:00:00Z" }] }, "offers.0.ends_at"],
    ["offer percent over 100", { offers: [{ offer_id: "o1", method_id: "visa", title: "t", discount_type: "percent", discount_value: 120 }] }, "offers.0.discount_value"],
  ])("400 VALIDATION_ERROR: %s", async (_name, overrides, path) => {
    const res = await admin("/v1/admin/merchants", { method: "POST", body: JSON.stringify(validMerchant(overrides)) });
    const body = await expectError(res, 400, "VALIDATION_ERROR");
    expect(body.error.details?.map((d) => d.path)).toContain(path);
  });

  it("allowed_origins: port 0 and a host that is no DNS name or IP literal are a 400 (URL takes them, no browser sends them); localhost, IPs, punycode and a trailing dot are stored", async () => {
    const refused = ["https://a.example:0", "https://-", "https://-a.example", "https://a-.example", "https://a..example", "https://.a.example", `https://${"a".repeat(64)}.example`];
    for (const origin of refused) {
      const res = await admin("/v1/admin/merchants", { method: "POST", body: JSON.stringify(validMerchant({ allowed_origins: ["https://ok.example", origin] })) });
      const body = await expectError(res, 400, "VALIDATION_ERROR");
      expect(body.error.details?.map((d) => d.path), origin).toEqual(["allowed_origins.1"]);
      expect(body.error.details?.[0]?.message, origin).toMatch(origin.endsWith(":0") ? /port 0/ : /no DNS name/);
    }
    const m = await createMerchant();
    const patched = await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ allowed_origins: ["http://shop.example:0"] }) });
    expect((await expectError(patched, 400, "VALIDATION_ERROR")).error.details?.map((d) => d.path)).toEqual(["allowed_origins.0"]);

    const accepted = ["http://localhost:8787", "http://127.0.0.1:3000", "http://[::1]:8787", "https://XN--bcher-kva.example", "https://shop.example.", "https://a-b.c1.example:1", `https://${"a".repeat(63)}.example`];
    const created = await admin("/v1/admin/merchants", { method: "POST", body: JSON.stringify(validMerchant({ allowed_origins: accepted })) });
    expect(created.status).toBe(201);
    expect((await created.json<{ allowed_origins: string[] }>()).allowed_origins).toEqual(accepted.map((o) => new URL(o).origin));
  });

  it("400 when a required field is missing", async () => {
    const { tier: _tier, ...rest } = validMerchant();
    const body = await expectError(await admin("/v1/admin/merchants", { method: "POST", body: JSON.stringify(rest) }), 400, "VALIDATION_ERROR");
    expect(body.error.details).toContainEqual({ path: "tier", message: "Required" });
  });

  it("a rate_limit's burst may equal but not exceed requests_per_hour (POST and PATCH)", async () => {
    const body = await expectError(await admin("/v1/admin/merchants", { method: "POST", body: JSON.stringify(validMerchant({ rate_limit: { requests_per_hour: 100, burst: 101 } })) }), 400, "VALIDATION_ERROR");
    const message = "must be at most requests_per_hour (100): a burst of 101 would let more than the hourly limit through at once";
    expect(body.error.details).toEqual([{ path: "rate_limit.burst", message }]);
    expect(body.error.message).toBe(`rate_limit.burst: ${message}`);
    // An invalid requests_per_hour is reported alone, not compared with the burst.
    const outOfRange = await admin("/v1/admin/merchants", { method: "POST", body: JSON.stringify(validMerchant({ rate_limit: { requests_per_hour: 0, burst: 5 } })) });
    expect((await expectError(outOfRange, 400, "VALIDATION_ERROR")).error.details?.map((d) => d.path)).toEqual(["rate_limit.requests_per_hour"]);

    const created = await admin("/v1/admin/merchants", { method: "POST", body: JSON.stringify(validMerchant({ rate_limit: { requests_per_hour: 100, burst: 100 } })) });
    expect(created.status).toBe(201);
    const { merchant_id } = await created.json<{ merchant_id: string }>();
    const patch = (p: unknown) => admin(`/v1/admin/merchants/${merchant_id}`, { method: "PATCH", body: JSON.stringify(p) });
    const refused = await expectError(await patch({ rate_limit: { requests_per_hour: 50, burst: 100 } }), 400, "VALIDATION_ERROR");
    expect(refused.error.details).toEqual([{ path: "rate_limit.burst", message: "must be at most requests_per_hour (50): a burst of 100 would let more than the hourly limit through at once" }]);
    expect((await (await admin(`/v1/admin/merchants/${merchant_id}`)).json<{ rate_limit: unknown }>()).rate_limit).toEqual({ requests_per_hour: 100, burst: 100 });
  });

  it("PATCH of the tier alone keeps a valid override in force; a stored invalid one must be replaced in the same PATCH", async () => {
    const m = await createMerchant({ tier: "starter", rate_limit: { requests_per_hour: 36, burst: 20 } });
    const tierOnly = await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ tier: "scale" }) });
    expect(tierOnly.status).toBe(200);
    expect(await tierOnly.json()).toMatchObject({ tier: "scale", rate_limit: { requests_per_hour: 36, burst: 20 } });
    const res = await api(m.secretKey, "/v1/payment-methods");
    await res.body?.cancel();
    expect(res.headers.get("RateLimit-Limit")).toBe("36");

    // A merchant saved before the rule held (burst over requests_per_hour, written straight to D1).
    await env.DB.prepare("UPDATE merchants SET config = json_set(config, '$.rate_limit', json('{\"requests_per_hour\":10,\"burst\":50}')) WHERE id = ?").bind(m.merchantId).run();
    const kept = await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ tier: "growth" }) });
    expect((await expectError(kept, 400, "VALIDATION_ERROR")).error.details).toEqual([
      {
        path: "rate_limit.burst",
        message: "the merchant's stored rate_limit is invalid: must be at most requests_per_hour (10): a burst of 50 would let more than the hourly limit through at once; send a valid rate_limit (or null for the tier's limits) with this change",
      },
    ]);
    const replaced = await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ tier: "growth", rate_limit: null }) });
    expect(replaced.status).toBe(200);
    expect(await replaced.json()).toMatchObject({ tier: "growth", rate_limit: null });
  });

  it("PATCH updates fields, merges features and takes effect for merchant routes", async () => {
    const m = await createMerchant();
    const res = await admin(`/v1/admin/merchants/${m.merchantId}`, {
      method: "PATCH",
      body: JSON.stringify({ methods: ["pix"], features: { targeted_offers: true }, holdout_percent: 10 }),
    });
    expect(res.status).toBe(200);
    const patched = await res.json<{ methods: string[]; features: Record<string, boolean>; holdout_percent: number }>();
    expect(patched.methods).toEqual(["pix"]);
    expect(patched.features).toEqual({ targeted_offers: true, cross_merchant: false, visitor_limit: false });
    expect(patched.holdout_percent).toBe(10);
    const catalog = await (await api(m.secretKey, "/v1/payment-methods")).json<{ methods: { method_id: string; enabled: boolean }[] }>();
    expect(catalog.methods.filter((x) => x.enabled).map((x) => x.method_id)).toEqual(["pix"]);
  });

  it("a PATCH that changes nothing (an empty body, or the current values) writes nothing: 200 with the merchant as it was, updated_at kept", async () => {
    const offer = { offer_id: "o1", method_id: "visa", title: "t", discount_type: "percent", discount_value: 5 };
    const m = await createMerchant({ allowed_origins: ["https://same.example"], scoring_weights: { favorite_boost: 1, default_boost: 2 }, offers: [offer] });
    const stored = async () => env.DB.prepare("SELECT config, updated_at, version FROM merchants WHERE id = ?").bind(m.merchantId).first();
    const before = await (await admin(`/v1/admin/merchants/${m.merchantId}`)).json<{ updated_at: string }>();
    const row = await stored();
    await new Promise((r) => setTimeout(r, 5)); // a write now would carry a later updated_at
    const deletes = vi.spyOn(env.CACHE, "delete");
    try {
      for (const body of [
        {},
        { name: "Test Shop", features: {}, holdout_percent: 0 },
        // Equal once canonicalized or merged: another spelling of the origin, weights in another order, a feature as it is.
        { allowed_origins: ["https://Same.Example:443"], scoring_weights: { default_boost: 2, favorite_boost: 1 }, features: { cross_merchant: false } },
        { offers: [{ ...offer, description: "" }], rate_limit: null },
      ]) {
        const res = await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify(body) });
        expect(res.status, JSON.stringify(body)).toBe(200);
        expect(await res.json(), JSON.stringify(body)).toEqual(before);
      }
      expect(deletes).not.toHaveBeenCalled(); // no cache churn
    } finally {
      deletes.mockRestore();
    }
    expect(await stored()).toEqual(row);
    // A real change still writes, and moves updated_at on.
    const changed = await (await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ holdout_percent: 1 }) })).json<{ updated_at: string }>();
    expect(changed.updated_at > before.updated_at).toBe(true);
  });

  it("PATCH rejects unknown fields and inconsistent offers", async () => {
    const m = await createMerchant();
    await expectError(await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: '{"merchant_id":"other"}' }), 400, "VALIDATION_ERROR");
    const res = await admin(`/v1/admin/merchants/${m.merchantId}`, {
      method: "PATCH",
      body: JSON.stringify({ offers: [{ offer_id: "o1", method_id: "pix", title: "t", discount_type: "fixed", discount_value: 100 }] }),
    });
    const body = await expectError(res, 400, "VALIDATION_ERROR");
    expect(body.error.details?.[0]?.path).toBe("offers.0.method_id");
    // A fixed discount is minor units: 0.01 (a hundredth of a cent) is a mistake, not an offer.
    const fractional = await admin(`/v1/admin/merchants/${m.merchantId}`, {
      method: "PATCH",
      body: JSON.stringify({ offers: [{ offer_id: "o2", method_id: "visa", title: "t", discount_type: "fixed", discount_value: 0.01 }] }),
    });
    expect((await expectError(fractional, 400, "VALIDATION_ERROR")).error.details).toEqual([{ path: "offers.0.discount_value", message: "a fixed discount is an integer amount in minor units (cents)" }]);
  });
});

describe("concurrent PATCHes", () => {
  type Stored = { name: string; tier: string; methods: string[]; allowed_origins: string[]; rate_limit: unknown; holdout_percent: number; features: Record<string, boolean>; offers: { offer_id: string }[]; scoring_weights: Record<string, number> };
  const patch = (id: string, body: unknown) => admin(`/v1/admin/merchants/${id}`, { method: "PATCH", body: JSON.stringify(body) });
  const read = async (id: string) => (await admin(`/v1/admin/merchants/${id}`)).json<Stored>();

  it("PATCHes of different fields sent at once are all applied (none is lost to another's write)", async () => {
    const m = await createMerchant();
    const offer = { offer_id: "o_race", method_id: "visa", title: "t", discount_type: "percent", discount_value: 5 };
    const bodies = [
      { name: "Raced" },
      { tier: "growth" },
      { holdout_percent: 7 },
      { features: { targeted_offers: true } },
      { features: { cross_merchant: true } },
      { methods: ["visa", "paypal", "klarna"] },
      { allowed_origins: ["https://raced.example"] },
      { rate_limit: { requests_per_hour: 1234, burst: 12 } },
      { scoring_weights: { favorite_boost: 2 } },
      { offers: [offer] },
    ];
    const answers = await Promise.all(bodies.map((b) => patch(m.merchantId, b)));
    expect(answers.map((r) => r.status)).toEqual(bodies.map(() => 200));
    const { name, tier, holdout_percent, features, methods, allowed_origins, rate_limit, scoring_weights, offers } = await read(m.merchantId);
    expect({ name, tier, holdout_percent, features, methods, allowed_origins, rate_limit, scoring_weights, offers: offers.map((o) => o.offer_id) }).toEqual({
      name: "Raced", tier: "growth", holdout_percent: 7, features: { targeted_offers: true, cross_merchant: true, visitor_limit: false },
      methods: ["visa", "paypal", "klarna"], allowed_origins: ["https://raced.example"], rate_limit: { requests_per_hour: 1234, burst: 12 },
      scoring_weights: { favorite_boost: 2 }, offers: ["o_race"],
    });
    // The child rows follow the merchant row: the CORS lookup table holds exactly the stored origins.
    const origins = await env.DB.prepare("SELECT origin FROM merchant_origins WHERE merchant_id = ?").bind(m.merchantId).all<{ origin: string }>();
    expect(origins.results.map((r) => r.origin)).toEqual(["https://raced.example"]);
  });

  /**
   * Runs `interfere` (a real write to D1) between the PATCH's read and its write, `times` times: the
   * write a concurrent request or an operator would make in that gap.
   */
  function writeInTheGap(times: number, interfere: () => Promise<unknown>) {
    const prepare = env.DB.prepare.bind(env.DB);
    let left = times;
    return vi.spyOn(env.DB, "prepare").mockImplementation((sql: string) => {
      const stmt = prepare(sql);
      if (!/ WHERE id = \? AND version = \?$/.test(sql)) return stmt; // only the PATCH's own write
      const bind = stmt.bind.bind(stmt);
      stmt.bind = (...values: unknown[]) => {
        const bound = bind(...values);
        const run = bound.run.bind(bound);
        bound.run = (async () => {
          if (left > 0) {
            left -= 1;
            await interfere();
          }
          return run();
        }) as typeof bound.run;
        return bound;
      };
      return stmt;
    });
  }

  it("a write that lands between a PATCH's read and its write is kept, even one that does not know of versions (an operator's SQL)", async () => {
    const m = await createMerchant();
    let holdout = 0;
    const operator = () => env.DB.prepare("UPDATE merchants SET config = json_set(config, '$.holdout_percent', ?) WHERE id = ?").bind(++holdout, m.merchantId).run();
    const gap = writeInTheGap(3, operator);
    try {
      const res = await patch(m.merchantId, { name: "After the gap" });
      expect(res.status).toBe(200);
      expect((await res.json<Stored>()).holdout_percent).toBe(3);
    } finally {
      gap.mockRestore();
    }
    expect(await read(m.merchantId)).toMatchObject({ name: "After the gap", holdout_percent: 3 });
  });

  it("409 CONFLICT, and nothing of the PATCH written, when every attempt loses the race", async () => {
    const m = await createMerchant();
    const before = await read(m.merchantId);
    let n = 0;
    const rival = () => env.DB.prepare("UPDATE merchants SET name = ? WHERE id = ?").bind(`Rival ${++n}`, m.merchantId).run();
    const gap = writeInTheGap(Infinity, rival);
    let res: Response;
    try {
      res = await patch(m.merchantId, { holdout_percent: 9 });
    } finally {
      gap.mockRestore();
    }
    const body = await expectError(res, 409, "CONFLICT");
    expect(body.error.message).toMatch(/retry/);
    expect(n).toBe(10); // bounded: ten attempts, then the answer
    const after = await read(m.merchantId);
    expect(after).toMatchObject({ name: "Rival 10", holdout_percent: before.holdout_percent });
  });

  describe("ETag and If-Match (a PATCH computed from one version applies to that version only)", () => {
    const patchIf = (id: string, ifMatch: string, body: unknown) =>
      admin(`/v1/admin/merchants/${id}`, { method: "PATCH", headers: { "If-Match": ifMatch }, body: JSON.stringify(body) });
    const etag = async (id: string) => (await admin(`/v1/admin/merchants/${id}`)).headers.get("ETag");

    it("every answer holding the merchant carries its version; a write moves it on, a no-op PATCH keeps it", async () => {
      const body = validMerchant();
      const created = await admin("/v1/admin/merchants", { method: "POST", body: JSON.stringify(body) });
      expect(created.status).toBe(201);
      expect(created.headers.get("ETag")).toBe('"v0"');
      expect(await etag(body.merchant_id)).toBe('"v0"');
      const changed = await patch(body.merchant_id, { holdout_percent: 3 });
      expect(changed.headers.get("ETag")).toBe('"v1"');
      expect(await etag(body.merchant_id)).toBe('"v1"');
      const same = await patch(body.merchant_id, { holdout_percent: 3 });
      expect(same.status).toBe(200);
      expect(same.headers.get("ETag")).toBe('"v1"');
      // A write that does not know of versions (an operator's SQL) moves it on too (migration 0013's trigger).
      await env.DB.prepare("UPDATE merchants SET name = 'By hand' WHERE id = ?").bind(body.merchant_id).run();
      expect(await etag(body.merchant_id)).toBe('"v2"');
    });

    it("two operators edit the offers list from the same read: the first wins, the second gets 412 with nothing written, then succeeds from a fresh read", async () => {
      const m = await createMerchant();
      const offer = (id: string) => ({ offer_id: id, method_id: "visa", title: id, discount_type: "percent", discount_value: 5 });
      const seen = await admin(`/v1/admin/merchants/${m.merchantId}`);
      const tag = seen.headers.get("ETag")!;
      const before = await seen.json<Stored>();
      const offers = before.offers;

      const first = await patchIf(m.merchantId, tag, { offers: [...offers, offer("o_first")] });
      expect(first.status).toBe(200);
      const second = await patchIf(m.merchantId, tag, { offers: [...offers, offer("o_second")], name: "Second" });
      const refused = await expectError(second, 412, "PRECONDITION_FAILED");
      expect(second.headers.get("ETag")).toBe(first.headers.get("ETag"));
      expect(refused.error.message).toContain(first.headers.get("ETag")!);
      const stored = await admin(`/v1/admin/merchants/${m.merchantId}`);
      expect(stored.headers.get("ETag")).toBe(first.headers.get("ETag"));
      const kept = await stored.json<Stored & { updated_at: string }>();
      expect({ name: kept.name, offers: kept.offers.map((o) => o.offer_id) }).toEqual({ name: before.name, offers: ["o_first"] });

      const retried = await patchIf(m.merchantId, stored.headers.get("ETag")!, { offers: [...kept.offers, offer("o_second")] });
      expect(retried.status).toBe(200);
      expect((await retried.json<Stored>()).offers.map((o) => o.offer_id)).toEqual(["o_first", "o_second"]);
    });

    it("a write between the PATCH's read and its write fails the precondition instead of being merged (no retry under If-Match)", async () => {
      const m = await createMerchant();
      const tag = (await etag(m.merchantId))!;
      let n = 0;
      const rival = () => env.DB.prepare("UPDATE merchants SET name = ? WHERE id = ?").bind(`Rival ${++n}`, m.merchantId).run();
      const gap = writeInTheGap(1, rival);
      let res: Response;
      try {
        res = await patchIf(m.merchantId, tag, { holdout_percent: 9 });
      } finally {
        gap.mockRestore();
      }
      await expectError(res, 412, "PRECONDITION_FAILED");
      expect(res.headers.get("ETag")).toBe('"v1"');
      expect(n).toBe(1);
      expect(await read(m.merchantId)).toMatchObject({ name: "Rival 1", holdout_percent: 0 });
    });

    it("If-Match: * or a list naming the current version applies; a weak or unknown tag is 412; a malformed value is 400", async () => {
      const m = await createMerchant();
      expect((await patchIf(m.merchantId, "*", { name: "Any" })).status).toBe(200);
      expect((await patchIf(m.merchantId, '"v0", "v1"', { name: "Listed" })).status).toBe(200);
      for (const stale of ['W/"v2"', '"v1"', '"not-ours"']) await expectError(await patchIf(m.merchantId, stale, { name: "No" }), 412, "PRECONDITION_FAILED");
      for (const bad of ["v2", '"v2', '"v2" "v3"']) {
        const body = await expectError(await patchIf(m.merchantId, bad, { name: "No" }), 400, "VALIDATION_ERROR");
        expect(body.error.details).toEqual([{ path: "if-match", message: expect.stringMatching(/quoted entity tags/) }]);
      }
      expect(await read(m.merchantId)).toMatchObject({ name: "Listed" });
      expect(await etag(m.merchantId)).toBe('"v2"');
    });

    it("an unknown merchant is 404 whatever If-Match says; a body that fails validation is 400 before the precondition", async () => {
      await expectError(await patchIf("m_unknown_etag", "*", { name: "x" }), 404, "NOT_FOUND");
      await expectError(await patchIf("m_unknown_etag", '"v0"', { name: "x" }), 404, "NOT_FOUND");
      const m = await createMerchant();
      await expectError(await patchIf(m.merchantId, '"v9"', { holdout_percent: 99 }), 400, "VALIDATION_ERROR");
    });
  });
});

describe("keys", () => {
  it("creates keys of both types, shows the plain key once", async () => {
    const m = await createMerchant();
    const res = await admin(`/v1/admin/merchants/${m.merchantId}/keys`, { method: "POST", body: '{"type":"publishable"}' });
    expect(res.status).toBe(201);
    const key = await res.json<{ key_id: string; key: string; type: string; merchant_id: string; created_at: string }>();
    expect(key).toMatchObject({ type: "publishable", merchant_id: m.merchantId });
    expect(key.key).toMatch(/^tp2_pk_/);
    const list = await (await admin(`/v1/admin/merchants/${m.merchantId}/keys`)).json<{ keys: { key_id: string; revoked_at: string | null }[] }>();
    expect(list.keys.map((k) => k.key_id)).toContain(key.key_id);
  });

  it("400 for an unknown key type", async () => {
    const m = await createMerchant();
    await expectError(await admin(`/v1/admin/merchants/${m.merchantId}/keys`, { method: "POST", body: '{"type":"root"}' }), 400, "VALIDATION_ERROR");
  });

  it("a revocation or merchant change whose cached copy KV will not drop still succeeds (it takes effect within 60 s anyway)", async () => {
    const m = await createMerchant();
    const failing = vi.spyOn(env.CACHE, "delete").mockRejectedValue(new Error("KV DELETE failed: 429 Too Many Requests"));
    try {
      expect((await admin(`/v1/admin/keys/${m.secretKeyId}`, { method: "DELETE" })).status).toBe(204);
      const patched = await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ name: "Renamed" }) });
      expect(patched.status).toBe(200);
    } finally {
      failing.mockRestore();
    }
    const list = await (await admin(`/v1/admin/merchants/${m.merchantId}/keys`)).json<{ keys: { key_id: string; revoked_at: string | null }[] }>();
    expect(list.keys.find((k) => k.key_id === m.secretKeyId)?.revoked_at).toMatch(/Z$/);
    expect((await (await admin(`/v1/admin/merchants/${m.merchantId}`)).json<{ name: string }>()).name).toBe("Renamed");
  });

  it("revocation shows in the list and is idempotent", async () => {
    const m = await createMerchant();
    expect((await admin(`/v1/admin/keys/${m.secretKeyId}`, { method: "DELETE" })).status).toBe(204);
    expect((await admin(`/v1/admin/keys/${m.secretKeyId}`, { method: "DELETE" })).status).toBe(204);
    const list = await (await admin(`/v1/admin/merchants/${m.merchantId}/keys`)).json<{ keys: { key_id: string; revoked_at: string | null }[] }>();
    expect(list.keys.find((k) => k.key_id === m.secretKeyId)?.revoked_at).toMatch(/Z$/);
  });
});

describe("catalog", () => {
  it("lists at least 20 real methods with true availability", async () => {
    const m = await createMerchant();
    const body = await (await api(m.secretKey, "/v1/payment-methods")).json<{
      methods: { method_id: string; kind: string; countries: string[] | "*"; currencies: string[] | "*" }[];
    }>();
    expect(body.methods.length).toBeGreaterThanOrEqual(20);
    const byId = new Map(body.methods.map((x) => [x.method_id, x]));
    expect(byId.get("ideal")).toMatchObject({ countries: ["NL"], currencies: ["EUR"] });
    expect(byId.get("pix")).toMatchObject({ countries: ["BR"], currencies: ["BRL"] });
    for (const id of ["visa", "mastercard", "amex", "discover", "jcb", "unionpay", "apple_pay", "google_pay", "paypal", "klarna", "afterpay", "affirm", "sepa_debit", "bancontact", "boleto", "upi", "alipay", "wechat_pay"]) {
      expect(byId.has(id), id).toBe(true);
    }
  });
});
