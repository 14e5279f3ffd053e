// The TypeScript client (clients/typescript) inside workerd, the runtime docs/clients.md says it runs
// in (Cloudflare Workers), calling this worker through SELF. Every answer goes through recordSample,
// so the contract check of setup.ts sees them too.
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { Tap2Client, Tap2Error } from "../../clients/typescript/src/index";
import { BASE, createMerchant } from "../helpers/fixtures";
import { recordSample } from "../helpers/samples";

async function throughSelf(request: Request): Promise<Response> {
  const url = new URL(request.url);
  return recordSample(request.method, url.pathname + url.search, await SELF.fetch(request));
}

describe("TypeScript client in Cloudflare Workers", () => {
  it("calls the API: methods, feedback, preferences, and a typed error for a bad key", async () => {
    const m = await createMerchant();
    const tap2 = new Tap2Client({ apiKey: m.secretKey, baseUrl: BASE, fetch: throughSelf });
    const { methods, decision_id } = await tap2.getMethods({ customer_id: "cus_w1", device_type: "mobile", country: "US" });
    expect(methods.length).toBeGreaterThan(0);
    const { eventId } = await tap2.sendFeedback({ customer_id: "cus_w1", method_id: methods[0]!.method_id, decision_id });
    expect(eventId).toMatch(/^evt_[0-9a-f]{32}$/);
    expect(await tap2.getPreferences("cus_w1")).toMatchObject({ customer_id: "cus_w1", merchant_id: m.merchantId });

    const bad = new Tap2Client({ apiKey: "tp2_sk_not_a_key", baseUrl: BASE, fetch: throughSelf });
    const err = await bad.getConsent("cus_w1").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Tap2Error);
    expect(err).toMatchObject({ status: 401, code: "INVALID_API_KEY", requestId: expect.stringMatching(/^req_/) });
  });

  it("refuses a redirect there too, without asking the host it names", async () => {
    const asked: string[] = [];
    const redirecting = async (request: Request) => {
      asked.push(`${request.redirect} ${new URL(request.url).host}`);
      return new Response(null, { status: 302, headers: { Location: "https://elsewhere.example/steal" } });
    };
    const tap2 = new Tap2Client({ apiKey: "tp2_sk_test", baseUrl: BASE, fetch: redirecting });
    await expect(tap2.getConsent("cus_w1")).rejects.toMatchObject({ status: 302, code: "REDIRECT" });
    expect(asked).toEqual(["manual api.test"]);
  });
});
