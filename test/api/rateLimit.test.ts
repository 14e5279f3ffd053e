import { createExecutionContext, env, evictAllDurableObjects, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../../src/app";
import { BUCKET_KEY, STALE_CONFIG_MS, type StoredBucket } from "../../src/ratelimit/durableObject";
import { clearMemo } from "../../src/storage/cachedRead";
import { admin, api, BASE, createMerchant, expectError } from "../helpers/fixtures";

const METHODS = "/v1/payment-methods";
/** 19 tokens refilled one per 100 s: a test never sees a refill by accident. */
const SLOW = { requests_per_hour: 36, burst: 19 };

function limiterOf(merchantId: string) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(merchantId));
}

function headersOf(res: Response) {
  return {
    limit: res.headers.get("RateLimit-Limit"),
    remaining: res.headers.get("RateLimit-Remaining"),
    reset: res.headers.get("RateLimit-Reset"),
  };
}

/** Seconds a busy machine may spend between two requests of a test; reset counts down meanwhile. */
const SLACK_S = 3;

/** Limit and remaining exactly; reset (a countdown) at most `reset` and not much below it. */
function expectHeaders(res: Response, limit: string, remaining: string, reset: number): void {
  const h = headersOf(res);
  expect({ limit: h.limit, remaining: h.remaining }).toEqual({ limit, remaining });
  expect(Number(h.reset)).toBeLessThanOrEqual(reset);
  expect(Number(h.reset)).toBeGreaterThan(reset - SLACK_S);
}

async function spend(key: string, n: number): Promise<Response[]> {
  const out: Response[] = [];
  for (let i = 0; i < n; i++) {
    const res = await api(key, METHODS);
    await res.body?.cancel();
    out.push(res);
  }
  return out;
}

/** Moves the bucket's last-update time back, as if `seconds` had passed (the DO reads Date.now()). */
async function ageBucket(merchantId: string, seconds: number): Promise<void> {
  await runInDurableObject(limiterOf(merchantId), (_instance, state) => {
    const bucket = state.storage.kv.get<StoredBucket>(BUCKET_KEY);
    if (!bucket) throw new Error("no bucket stored");
    state.storage.kv.put(BUCKET_KEY, { ...bucket, updated_ms: bucket.updated_ms - seconds * 1000 });
  });
}

/** Moves back the time the bucket first saw its current config, as if `seconds` had passed since. */
async function ageConfig(merchantId: string, seconds: number): Promise<void> {
  await runInDurableObject(limiterOf(merchantId), (_instance, state) => {
    const bucket = state.storage.kv.get<StoredBucket>(BUCKET_KEY);
    if (!bucket?.config_seen_ms) throw new Error("no config recorded in the bucket");
    state.storage.kv.put(BUCKET_KEY, { ...bucket, config_seen_ms: bucket.config_seen_ms - seconds * 1000 });
  });
}

function patchMerchant(merchantId: string, patch: Record<string, unknown>): Promise<Response> {
  return admin(`/v1/admin/merchants/${merchantId}`, { method: "PATCH", body: JSON.stringify(patch) });
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("RateLimit headers", () => {
  it("every merchant response carries the hourly limit, whole tokens left and seconds until full", async () => {
    const m = await createMerchant({ rate_limit: SLOW });
    const [first, second] = await spend(m.secretKey, 2);
    expect(first!.status).toBe(200);
    expect(headersOf(first!)).toEqual({ limit: "36", remaining: "18", reset: "100" });
    expectHeaders(second!, "36", "17", 200);
  });

  it("are present on errors thrown after the limiter (400, 404) and those requests count", async () => {
    const m = await createMerchant({ rate_limit: SLOW });
    const bad = await api(m.secretKey, `${METHODS}?nope=1`);
    expect(headersOf(bad)).toEqual({ limit: "36", remaining: "18", reset: "100" });
    await expectError(bad, 400, "VALIDATION_ERROR");
    const missing = await api(m.secretKey, "/v1/no-such-route");
    expectHeaders(missing, "36", "17", 200);
    await expectError(missing, 404, "NOT_FOUND");
  });

  it("are present on body errors of a valid key (400 INVALID_JSON, 413, 415) and those requests count", async () => {
    const m = await createMerchant({ rate_limit: SLOW });
    const post = (body: string, type = "application/json") =>
      api(m.secretKey, "/v1/personalize/feedback", { method: "POST", body, headers: { "Content-Type": type } });
    const invalid = await post("{bad");
    expect(headersOf(invalid)).toEqual({ limit: "36", remaining: "18", reset: "100" });
    await expectError(invalid, 400, "INVALID_JSON");
    const large = await post(JSON.stringify({ customer_id: "c", method_id: "visa", pad: "x".repeat(70_000) }));
    expectHeaders(large, "36", "17", 200);
    await expectError(large, 413, "PAYLOAD_TOO_LARGE");
    const text = await post("customer_id=c", "text/plain");
    expectHeaders(text, "36", "16", 300);
    await expectError(text, 415, "UNSUPPORTED_MEDIA_TYPE");
  });

  it("are present on 403s of a valid key (KEY_NOT_ALLOWED, MERCHANT_MISMATCH) and those requests count", async () => {
    const m = await createMerchant({ rate_limit: SLOW });
    const other = await createMerchant();
    const forbidden = await api(m.publishableKey, "/v1/payment-methods");
    expect(headersOf(forbidden)).toEqual({ limit: "36", remaining: "18", reset: "100" });
    await expectError(forbidden, 403, "KEY_NOT_ALLOWED");
    const mismatch = await api(m.secretKey, `/v1/payment-methods?merchant_id=${other.merchantId}`);
    expectHeaders(mismatch, "36", "17", 200);
    await expectError(mismatch, 403, "MERCHANT_MISMATCH");
  });

  it("publishable and secret keys of a merchant share one bucket", async () => {
    const m = await createMerchant({ rate_limit: SLOW });
    await spend(m.secretKey, 1);
    const res = await api(m.publishableKey, "/v1/personalize/methods?customer_id=c1");
    await res.body?.cancel();
    expect(res.headers.get("RateLimit-Remaining")).toBe("17");
  });

  it("are absent on 401s (before the limiter) and on admin routes (not limited)", async () => {
    const unauth = await api(null, METHODS);
    expect(unauth.headers.get("RateLimit-Limit")).toBeNull();
    await expectError(unauth, 401, "MISSING_API_KEY");
    const m = await createMerchant({ rate_limit: SLOW });
    const adminRes = await admin(`/v1/admin/merchants/${m.merchantId}`);
    expect(adminRes.status).toBe(200);
    expect(adminRes.headers.get("RateLimit-Limit")).toBeNull();
  });
});

describe("429 RATE_LIMITED", () => {
  it("refuses the request after the burst with Retry-After and the RateLimit headers", async () => {
    const m = await createMerchant({ rate_limit: SLOW });
    const ok = await spend(m.secretKey, 19);
    expect(ok.map((r) => r.status)).toEqual(Array(19).fill(200));
    expectHeaders(ok[18]!, "36", "0", 100);

    const res = await api(m.secretKey, METHODS);
    const body = await expectError(res, 429, "RATE_LIMITED");
    expect(body.error.message).toMatch(/36 requests per hour/);
    expect(body.error.documentation_url).toBe("https://docs.tap2.com/errors#RATE_LIMITED");
    expectHeaders(res, "36", "0", 100);
    expect(res.headers.get("Retry-After")).toBe(res.headers.get("RateLimit-Reset"));
  });

  it("refusals take no token: the bucket refills at the configured rate regardless", async () => {
    const m = await createMerchant({ rate_limit: { requests_per_hour: 36, burst: 5 } });
    await spend(m.secretKey, 5);
    const refused = await spend(m.secretKey, 3);
    expect(refused.map((r) => r.status)).toEqual([429, 429, 429]);
    await ageBucket(m.merchantId, 200); // two tokens at one per 100 s
    const after = await spend(m.secretKey, 3);
    expect(after.map((r) => r.status)).toEqual([200, 200, 429]);
  });
});

describe("refill over time", () => {
  it("adds requests_per_hour / 3600 tokens per second, up to the burst", async () => {
    const m = await createMerchant({ rate_limit: { requests_per_hour: 36, burst: 10 } });
    await spend(m.secretKey, 10);
    await expectError(await api(m.secretKey, METHODS), 429, "RATE_LIMITED");

    await ageBucket(m.merchantId, 300); // three tokens at one per 100 s
    const [res] = await spend(m.secretKey, 1);
    expect(res!.status).toBe(200);
    expect(res!.headers.get("RateLimit-Remaining")).toBe("2");

    await ageBucket(m.merchantId, 3600 * 24); // far more than a bucketful: capped at the burst
    const [full] = await spend(m.secretKey, 1);
    expect(headersOf(full!)).toEqual({ limit: "36", remaining: "9", reset: "100" });
  });

  it("the bucket survives eviction of the Durable Object", async () => {
    const m = await createMerchant({ rate_limit: SLOW });
    await spend(m.secretKey, 5);
    await evictAllDurableObjects();
    const [res] = await spend(m.secretKey, 1);
    expect(res!.headers.get("RateLimit-Remaining")).toBe("13");
  });
});

describe("isolation, tiers and overrides", () => {
  it("one merchant exhausting its bucket does not affect another", async () => {
    const a = await createMerchant({ rate_limit: { requests_per_hour: 36, burst: 3 } });
    const b = await createMerchant({ rate_limit: { requests_per_hour: 36, burst: 3 } });
    await spend(a.secretKey, 3);
    await expectError(await api(a.secretKey, METHODS), 429, "RATE_LIMITED");
    const [res] = await spend(b.secretKey, 1);
    expect(res!.status).toBe(200);
    expect(res!.headers.get("RateLimit-Remaining")).toBe("2");
  });

  it.each([
    ["starter", "1000", "99"],
    ["growth", "5000", "499"],
    ["scale", "10000", "999"],
  ])("tier %s without an override: limit %s, burst - 1 left after one request", async (tier, limit, remaining) => {
    const m = await createMerchant({ tier });
    const [res] = await spend(m.secretKey, 1);
    expect(res!.headers.get("RateLimit-Limit")).toBe(limit);
    expect(res!.headers.get("RateLimit-Remaining")).toBe(remaining);
  });

  it("an override wins over the tier, and PATCHed limits apply to the existing bucket", async () => {
    const m = await createMerchant({ tier: "starter", rate_limit: { requests_per_hour: 36, burst: 20 } });
    const [first] = await spend(m.secretKey, 1);
    expect(headersOf(first!)).toEqual({ limit: "36", remaining: "19", reset: "100" });

    // Burst 20 → 10 keeps the fill ratio: 19/20 becomes 9.5, one request leaves 8.5.
    const patched = await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ rate_limit: { requests_per_hour: 72, burst: 10 } }) });
    expect(patched.status).toBe(200);
    const [second] = await spend(m.secretKey, 1);
    expectHeaders(second!, "72", "8", 75);

    // Dropping the override falls back to the tier (starter 1000/100): 8.5/10 becomes 85.
    await admin(`/v1/admin/merchants/${m.merchantId}`, { method: "PATCH", body: JSON.stringify({ rate_limit: null }) });
    const [third] = await spend(m.secretKey, 1);
    expect(third!.headers.get("RateLimit-Limit")).toBe("1000");
    expect(third!.headers.get("RateLimit-Remaining")).toBe("84");
  });
});

describe("changed limits", () => {
  it("a raised rate applies from the moment the bucket first sees it: the time before earns at the old rate", async () => {
    const m = await createMerchant({ rate_limit: { requests_per_hour: 36, burst: 20 } }); // one token per 100 s
    await spend(m.secretKey, 20);
    await ageBucket(m.merchantId, 100); // one token earned at the old rate
    expect((await patchMerchant(m.merchantId, { rate_limit: { requests_per_hour: 360, burst: 20 } })).status).toBe(200);

    // Credited at the new rate (one per 10 s) those 100 s would be 10 tokens.
    const [res] = await spend(m.secretKey, 1);
    expect(res!.status).toBe(200);
    expectHeaders(res!, "360", "0", 10);
    await expectError(await api(m.secretKey, METHODS), 429, "RATE_LIMITED");
    // From then on it refills at the new rate.
    await ageBucket(m.merchantId, 30);
    expect((await spend(m.secretKey, 4)).map((r) => r.status)).toEqual([200, 200, 200, 429]);
  });

  it("a lowered rate does not take back what was earned before it was seen", async () => {
    const m = await createMerchant({ rate_limit: { requests_per_hour: 360, burst: 20 } }); // one token per 10 s
    await spend(m.secretKey, 20);
    await ageBucket(m.merchantId, 100); // ten tokens earned at the old rate
    expect((await patchMerchant(m.merchantId, { rate_limit: { requests_per_hour: 36, burst: 20 } })).status).toBe(200);

    // Credited at the new rate (one per 100 s) those 100 s would be a single token.
    const [res] = await spend(m.secretKey, 1);
    expect(res!.status).toBe(200);
    expect(headersOf(res!)).toMatchObject({ limit: "36", remaining: "9" });
  });

  it("an isolate whose copy of the config is older does not switch the bucket back (for up to 60 s)", async () => {
    const m = await createMerchant({ rate_limit: { requests_per_hour: 36, burst: 20 } });
    await spend(m.secretKey, 1);
    const before = await (await admin(`/v1/admin/merchants/${m.merchantId}`)).json<{ updated_at: string }>();
    await new Promise((resolve) => setTimeout(resolve, 5)); // a later updated_at
    expect((await patchMerchant(m.merchantId, { rate_limit: { requests_per_hour: 360, burst: 10 } })).status).toBe(200);
    const [fresh] = await spend(m.secretKey, 1); // 19/20 becomes 9.5/10, one request leaves 8.5
    expect(headersOf(fresh!)).toMatchObject({ limit: "360", remaining: "8" });

    // An isolate that still holds the merchant as it was before the PATCH (its cached copy in KV).
    const staleCopy = () => env.CACHE.put(`merchant:${m.merchantId}`, JSON.stringify({ v: before, at: Date.now() }));
    await staleCopy();
    clearMemo();
    const [stale] = await spend(m.secretKey, 1);
    expect(headersOf(stale!)).toMatchObject({ limit: "360", remaining: "7" });

    // Past the bound on config staleness, whatever the callers send is what D1 holds (a restored
    // row may be older): it is adopted.
    await ageConfig(m.merchantId, STALE_CONFIG_MS / 1000 + 1);
    await staleCopy();
    clearMemo();
    const [adopted] = await spend(m.secretKey, 1); // 7.5/10 becomes 15/20, one request leaves 14
    expect(headersOf(adopted!)).toMatchObject({ limit: "36", remaining: "14" });
    clearMemo();
    await env.CACHE.delete(`merchant:${m.merchantId}`);
  });
});

describe("changed limits: the config version", () => {
  it("a PATCH of the limits applies at once even when the stored updated_at is ahead of this machine's clock", async () => {
    // The limiter orders configs by updated_at. A row last written by a machine whose clock ran
    // ahead (or in the same millisecond) must not make the next PATCH's config look older than it.
    const m = await createMerchant({ rate_limit: { requests_per_hour: 36, burst: 20 } });
    const ahead = new Date(Date.now() + 3_600_000).toISOString();
    await env.DB.prepare("UPDATE merchants SET updated_at = ? WHERE id = ?").bind(ahead, m.merchantId).run();
    await env.CACHE.delete(`merchant:${m.merchantId}`);
    clearMemo();
    const [seen] = await spend(m.secretKey, 1); // the limiter now knows the config of `ahead`
    expect(headersOf(seen!)).toMatchObject({ limit: "36" });

    const res = await patchMerchant(m.merchantId, { rate_limit: { requests_per_hour: 360, burst: 10 } });
    expect(res.status).toBe(200);
    expect((await res.json<{ updated_at: string }>()).updated_at > ahead).toBe(true);
    const [after] = await spend(m.secretKey, 1);
    expect(headersOf(after!)).toMatchObject({ limit: "360" });
  });

  it("an operator's SQL change of the limits is a newer version too: an isolate still holding the old copy does not switch the bucket back", async () => {
    // Before migration 0016 such a write kept updated_at, so the old copy and the new one had the
    // same version and the bucket took whichever came last until every cache had refreshed.
    const m = await createMerchant({ rate_limit: { requests_per_hour: 36, burst: 20 } });
    await spend(m.secretKey, 1);
    const before = await (await admin(`/v1/admin/merchants/${m.merchantId}`)).json<{ updated_at: string }>();
    await new Promise((resolve) => setTimeout(resolve, 5));
    await env.DB.prepare("UPDATE merchants SET config = json_set(config, '$.rate_limit', json('{\"requests_per_hour\":360,\"burst\":10}')) WHERE id = ?").bind(m.merchantId).run();
    await env.CACHE.delete(`merchant:${m.merchantId}`);
    clearMemo();
    const [fresh] = await spend(m.secretKey, 1); // 19/20 becomes 9.5/10, one request leaves 8.5
    expect(headersOf(fresh!)).toMatchObject({ limit: "360", remaining: "8" });

    await env.CACHE.put(`merchant:${m.merchantId}`, JSON.stringify({ v: before, at: Date.now() }));
    clearMemo();
    const [stale] = await spend(m.secretKey, 1);
    expect(headersOf(stale!)).toMatchObject({ limit: "360", remaining: "7" });
    clearMemo();
    await env.CACHE.delete(`merchant:${m.merchantId}`);
  });
});

describe("a merchant re-created with the same id", () => {
  /** Deletes the merchant and its keys as an operator's SQL would, and drops its cached copy. */
  async function deleteInSql(merchantId: string): Promise<void> {
    await env.DB.batch([env.DB.prepare("DELETE FROM api_keys WHERE merchant_id = ?").bind(merchantId), env.DB.prepare("DELETE FROM merchants WHERE id = ?").bind(merchantId)]);
    await env.CACHE.delete(`merchant:${merchantId}`);
    clearMemo();
  }

  /** Moves back the time the bucket first saw its incarnation, as if `seconds` had passed since. */
  async function ageIncarnation(merchantId: string, seconds: number): Promise<void> {
    await runInDurableObject(limiterOf(merchantId), (_instance, state) => {
      const bucket = state.storage.kv.get<StoredBucket>(BUCKET_KEY);
      if (!bucket) throw new Error("no bucket stored");
      if (bucket.incarnation_seen_ms !== undefined) state.storage.kv.put(BUCKET_KEY, { ...bucket, incarnation_seen_ms: bucket.incarnation_seen_ms - seconds * 1000 });
    });
  }

  it("starts with a full bucket, not the spent one of the merchant deleted before it", async () => {
    const old = await createMerchant({ rate_limit: SLOW });
    await spend(old.secretKey, 15);
    const oldRow = await (await admin(`/v1/admin/merchants/${old.merchantId}`)).json<{ created_at: string; updated_at: string }>();
    await ageIncarnation(old.merchantId, STALE_CONFIG_MS / 1000 + 1); // the old merchant lived for a while
    await deleteInSql(old.merchantId);
    await new Promise((resolve) => setTimeout(resolve, 5)); // a later created_at

    const m = await createMerchant({ merchant_id: old.merchantId, rate_limit: SLOW });
    const [first] = await spend(m.secretKey, 1);
    expect(first!.status).toBe(200);
    expect(headersOf(first!)).toMatchObject({ limit: "36", remaining: "18" });
    // The new bucket is kept across requests: not reset on each one.
    const [second] = await spend(m.secretKey, 1);
    expect(headersOf(second!)).toMatchObject({ remaining: "17" });

    // An isolate still holding the merchant before it was re-created (up to 60 s) counts against the
    // new bucket; it does not switch it back to a full one of its own.
    const stale = await limiterOf(m.merchantId).take({ ...SLOW, version: Date.parse(oldRow.updated_at), incarnation: oldRow.created_at });
    expect(stale.remaining).toBe(16);
    const [third] = await spend(m.secretKey, 1);
    expect(headersOf(third!)).toMatchObject({ remaining: "15" });
  });

  it("a bucket stored before incarnations were recorded is adopted with its tokens", async () => {
    const m = await createMerchant({ rate_limit: SLOW });
    await spend(m.secretKey, 5);
    await runInDurableObject(limiterOf(m.merchantId), (_instance, state) => {
      const { incarnation: _i, incarnation_seen_ms: _s, ...legacy } = state.storage.kv.get<StoredBucket>(BUCKET_KEY)!;
      state.storage.kv.put(BUCKET_KEY, legacy);
    });
    const [res] = await spend(m.secretKey, 1);
    expect(headersOf(res!)).toMatchObject({ remaining: "13" });
    const row = await (await admin(`/v1/admin/merchants/${m.merchantId}`)).json<{ created_at: string }>();
    const bucket = await runInDurableObject(limiterOf(m.merchantId), (_instance, state) => state.storage.kv.get<StoredBucket>(BUCKET_KEY)!);
    expect(bucket.incarnation).toBe(row.created_at);
  });
});

describe("exactness under concurrency", () => {
  it("40 concurrent requests against 19 tokens let exactly 19 through", async () => {
    const m = await createMerchant({ rate_limit: SLOW });
    const responses = await Promise.all(Array.from({ length: 40 }, () => api(m.secretKey, METHODS)));
    await Promise.all(responses.map((r) => r.body?.cancel()));
    const ok = responses.filter((r) => r.status === 200);
    expect(ok).toHaveLength(19);
    expect(responses.filter((r) => r.status === 429)).toHaveLength(21);
    // Each admitted request saw a distinct count: the bucket served them one at a time.
    const remaining = ok.map((r) => Number(r.headers.get("RateLimit-Remaining"))).sort((x, y) => x - y);
    expect(remaining).toEqual(Array.from({ length: 19 }, (_, i) => i));
  });
});

describe("when the limiter fails", () => {
  it("fails open: the request is answered without RateLimit headers, logged as an error and counted", async () => {
    const m = await createMerchant({ rate_limit: { requests_per_hour: 36, burst: 1 } });
    await spend(m.secretKey, 1);
    await expectError(await api(m.secretKey, METHODS), 429, "RATE_LIMITED");

    // The real binding, with get() wrapped to hand out a stub whose call fails as an unreachable DO does.
    const get = vi.spyOn(env.RATE_LIMITER, "get").mockImplementation(
      () => ({ take: () => Promise.reject(new Error("Durable Object is overloaded")) }) as unknown as ReturnType<typeof env.RATE_LIMITER.get>,
    );
    const errors = vi.spyOn(console, "error");
    const logs = vi.spyOn(console, "log");
    const res = await api(m.secretKey, METHODS);
    expect(get).toHaveBeenCalled();
    expect(res.status).toBe(200);
    expect(headersOf(res)).toEqual({ limit: null, remaining: null, reset: null });
    const errorLine = errors.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>).find((l) => l.metric === "rate_limiter_unavailable");
    expect(errorLine).toMatchObject({ level: "error", merchant_id: m.merchantId, error: "Error: Durable Object is overloaded" });
    const requestLine = logs.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>).find((l) => l.endpoint === METHODS);
    expect(requestLine).toMatchObject({ rate_limiter: "unavailable", status_code: 200 });

    // Once the limiter answers again the bucket is enforced as before.
    get.mockRestore();
    await expectError(await api(m.secretKey, METHODS), 429, "RATE_LIMITED");
  });
});

describe("RATE_LIMIT_ENABLED", () => {
  it('"false" switches the limiter off (benchmark baseline): no headers, no 429', async () => {
    const m = await createMerchant({ rate_limit: { requests_per_hour: 36, burst: 1 } });
    const app = createApp();
    const off = { ...env, RATE_LIMIT_ENABLED: "false" };
    for (let i = 0; i < 3; i++) {
      const ctx = createExecutionContext();
      const res = await app.fetch(new Request(`${BASE}${METHODS}`, { headers: { "X-API-Key": m.secretKey } }), off, ctx);
      await waitOnExecutionContext(ctx);
      expect(res.status).toBe(200);
      expect(res.headers.get("RateLimit-Limit")).toBeNull();
    }
    // Through the deployed config ("true") the same merchant is limited.
    await spend(m.secretKey, 1);
    await expectError(await api(m.secretKey, METHODS), 429, "RATE_LIMITED");
  });
});
