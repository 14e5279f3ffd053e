import { SELF } from "cloudflare:test";
import { recordSample } from "./samples";

export const ADMIN_TOKEN = "test-admin-token";
export const BASE = "https://api.test";

export interface TestMerchant {
  merchantId: string;
  secretKey: string;
  publishableKey: string;
  secretKeyId: string;
}

let counter = 0;

/** A unique merchant id for this test file and call. */
export function uniqueMerchantId(prefix = "m"): string {
  counter += 1;
  return `${prefix}_${Date.now().toString(36)}_${counter}`;
}

/** SELF.fetch, with the answer recorded for the OpenAPI contract check that runs after each file (setup.ts). */
export async function recordedFetch(path: string, init: RequestInit = {}): Promise<Response> {
  return recordSample(init.method ?? "GET", path, await SELF.fetch(`${BASE}${path}`, init));
}

export function admin(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${ADMIN_TOKEN}`);
  if (init.body && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  return recordedFetch(path, { ...init, headers });
}

/** Creates a merchant through the admin API, with one secret and one publishable key. */
export async function createMerchant(overrides: Record<string, unknown> = {}): Promise<TestMerchant> {
  const merchantId = (overrides.merchant_id as string | undefined) ?? uniqueMerchantId();
  const res = await admin("/v1/admin/merchants", {
    method: "POST",
    body: JSON.stringify({
      merchant_id: merchantId,
      name: "Test Shop",
      tier: "scale",
      methods: ["visa", "mastercard", "apple_pay", "google_pay", "paypal", "klarna", "ideal"],
      allowed_origins: ["https://shop.example"],
      ...overrides,
    }),
  });
  if (res.status !== 201) throw new Error(`createMerchant: ${res.status} ${await res.text()}`);
  const secret = await createKey(merchantId, "secret");
  const publishable = await createKey(merchantId, "publishable");
  return { merchantId, secretKey: secret.key, secretKeyId: secret.key_id, publishableKey: publishable.key };
}

export async function createKey(merchantId: string, type: "secret" | "publishable"): Promise<{ key: string; key_id: string }> {
  const res = await admin(`/v1/admin/merchants/${merchantId}/keys`, { method: "POST", body: JSON.stringify({ type }) });
  if (res.status !== 201) throw new Error(`createKey: ${res.status} ${await res.text()}`);
  return res.json();
}

/** A request with a merchant key; JSON bodies get their Content-Type. */
export function api(key: string | null, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (key) headers.set("X-API-Key", key);
  if (init.body && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  return recordedFetch(path, { ...init, headers });
}

export interface ErrorJson {
  error: { code: string; message: string; request_id: string; documentation_url: string; details?: { path: string; message: string }[] };
}

/** Asserts the contract's error body and returns it. */
export async function expectError(res: Response, status: number, code: string): Promise<ErrorJson> {
  const text = await res.text();
  if (res.status !== status) throw new Error(`expected ${status} ${code}, got ${res.status}: ${text}`);
  const body = JSON.parse(text) as ErrorJson;
  if (body.error?.code !== code) throw new Error(`expected code ${code}, got ${text}`);
  if (body.error.request_id !== res.headers.get("X-Request-Id")) throw new Error("request_id does not match X-Request-Id");
  return body;
}
