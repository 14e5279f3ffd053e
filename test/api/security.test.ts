import { SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { admin, api, BASE, createMerchant, type TestMerchant } from "../helpers/fixtures";

/**
 * Attacker's-eye checks that cut across routes (README "Security at a glance"): what a browser may
 * do with an answer, and what one merchant's credentials can learn of another's data.
 */

let a: TestMerchant;
beforeAll(async () => {
  a = await createMerchant();
});

describe("answers in a browser", () => {
  it("no other site may frame the API reference page (people paste keys and the admin token into it), nor send its URL on", async () => {
    const res = await SELF.fetch(`${BASE}/docs`);
    expect(res.status).toBe(200);
    const csp = res.headers.get("Content-Security-Policy") ?? "";
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("base-uri 'none'");
    expect(csp).toContain("object-src 'none'");
    // The page must still load its pinned script: no script-src or default-src that would block it.
    expect(csp).not.toMatch(/default-src|script-src/);
    expect(res.headers.get("X-Frame-Options")).toBe("DENY");
    expect(res.headers.get("Referrer-Policy")).toBe("no-referrer");
  });

  it("every JSON answer, errors, preflights and admin answers included, loads nothing and is never framed", async () => {
    const answers = [
      await api(a.secretKey, "/v1/personalize/methods?customer_id=cus_1"),
      await api(a.publishableKey, "/v1/personalize/methods", { headers: { Origin: "https://shop.example" } }),
      await api(null, "/v1/personalize/methods"),
      await api(a.secretKey, "/v1/nope"),
      await admin(`/v1/admin/merchants/${a.merchantId}`),
      await SELF.fetch(`${BASE}/health`),
      await SELF.fetch(`${BASE}/v1/openapi.json`),
      await SELF.fetch(`${BASE}/v1/personalize/methods`, { method: "OPTIONS", headers: { Origin: "https://shop.example", "Access-Control-Request-Method": "GET" } }),
    ];
    for (const res of answers) {
      expect(res.headers.get("Content-Security-Policy"), res.url).toBe("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
      expect(res.headers.get("X-Frame-Options"), res.url).toBe("DENY");
      expect(res.headers.get("Referrer-Policy"), res.url).toBe("no-referrer");
    }
  });
});
