import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CATALOG } from "../../src/catalog/methods";
import { type Arm, customerTag, type DecisionClaims, signDecision, verifyDecision } from "../../src/personalization/decision";
import type { FallbackReason } from "../../src/personalization/ranking";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const ALL_METHODS = CATALOG.map((m) => m.id);
// What a DE/EUR desktop checkout of a merchant with every catalog method gets: the longest real answer.
const DE_DESKTOP = ["paypal", "visa", "mastercard", "klarna", "apple_pay", "google_pay", "sepa_debit", "sofort", "giropay", "amex", "jcb", "unionpay", "alipay", "wechat_pay"];

/** Ids made by the code of their format under the test SIGNING_KEY (vitest.config.ts), kept verbatim. */
const FIXTURES = {
  // The first format (JSON payload), issued until the packed one: attributable for 90 days after.
  jsonCustomer: {
    merchant: "m_legacy_fixture",
    id: "dec_eyJuIjoiZThobGc3YnZaTmZRIiwibSI6Im1fbGVnYWN5X2ZpeHR1cmUiLCJhIjoidHJlYXRtZW50IiwiZiI6bnVsbCwiciI6WyJwYXlwYWwiLCJ2aXNhIiwibWFzdGVyY2FyZCIsImtsYXJuYSIsImFwcGxlX3BheSIsImdvb2dsZV9wYXkiLCJzZXBhX2RlYml0Iiwic29mb3J0IiwiZ2lyb3BheSIsImFtZXgiLCJqY2IiLCJ1bmlvbnBheSIsImFsaXBheSIsIndlY2hhdF9wYXkiXSwidCI6MTc2NzI2NTIwMDEyMywiYyI6InhhTEtYY25RWEFociJ9.NYR6uV1udtpVwyiLHsBUNQ",
    claims: { m: "m_legacy_fixture", a: "treatment", f: null, r: DE_DESKTOP, t: 1767265200123, c: "xaLKXcnQXAhr" },
    customer: "ref_legacy_fixture",
  },
  jsonGuest: {
    merchant: "m_legacy_fixture",
    id: "dec_eyJuIjoiSl9MdlBETGFsOUNzIiwibSI6Im1fbGVnYWN5X2ZpeHR1cmUiLCJhIjpudWxsLCJmIjoiZ3Vlc3QiLCJyIjpbInZpc2EiLCJwYXlwYWwiXSwidCI6MTc2NzI2NTIwMTQ1Nn0.0Wtifoyx2nizPYv4I18Mfg",
    claims: { m: "m_legacy_fixture", a: null, f: "guest", r: ["visa", "paypal"], t: 1767265201456 },
  },
  // The packed format ranking the whole catalog (in reverse): pins the catalog's order, which ids
  // issued earlier name their methods by.
  packedCatalog: {
    merchant: "m_packed_fixture",
    id: "dec_AR4Bm3k25_vy9zJcl9ZMj1qA_3WG9H-ZXMEgHx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA.R1qho5qNohQdYKcOR6DBag",
    claims: { m: "m_packed_fixture", a: "holdout", f: "holdout", r: ["cash_app_pay", "konbini", "grabpay", "wechat_pay", "alipay", "upi", "oxxo", "boleto", "pix", "twint", "mobilepay", "swish", "blik", "przelewy24", "eps", "giropay", "sofort", "bancontact", "sepa_debit", "ideal", "affirm", "afterpay", "klarna", "paypal", "google_pay", "apple_pay", "cartes_bancaires", "unionpay", "jcb", "discover", "amex", "mastercard", "visa"], t: 1767265200123, c: "gP91hvR_mVzB" },
    customer: "ref_packed_fixture",
  },
} as const;

const claims = (over: Partial<DecisionClaims> = {}): DecisionClaims => ({ m: "m_dec", a: "treatment", f: null, r: DE_DESKTOP, t: 1767265200123, ...over });

describe("decision ids issued before", () => {
  for (const [name, fixture] of Object.entries(FIXTURES)) {
    it(`${name} still verifies, with the same arm, ranks, time and customer tag`, async () => {
      expect(await verifyDecision(env.SIGNING_KEY, fixture.id, fixture.merchant)).toEqual(fixture.claims);
      if ("customer" in fixture) expect(await customerTag(env.SIGNING_KEY, fixture.merchant, fixture.customer)).toBe(fixture.claims.c);
    });

    it(`${name} is nobody else's: another merchant, another key or one changed character`, async () => {
      expect(await verifyDecision(env.SIGNING_KEY, fixture.id, "m_other")).toBeNull();
      expect(await verifyDecision("another-signing-key", fixture.id, fixture.merchant)).toBeNull();
      const dot = fixture.id.indexOf(".");
      for (const at of [4, dot - 1, dot + 1, fixture.id.length - 1]) {
        const changed = fixture.id.slice(0, at) + ALPHABET[ALPHABET.indexOf(fixture.id[at]!) ^ 1]! + fixture.id.slice(at + 1);
        expect(await verifyDecision(env.SIGNING_KEY, changed, fixture.merchant)).toBeNull();
      }
    });
  }

  it("the catalog only grows: the packed fixture names every method it has at its index", () => {
    expect(ALL_METHODS.slice(0, 33)).toEqual([...FIXTURES.packedCatalog.claims.r].reverse());
  });
});

describe("new decision ids", () => {
  const arms: (Arm | null)[] = ["treatment", "holdout", null];
  const reasons: (FallbackReason | null)[] = [null, "customer_deleted", "personalization_disabled", "holdout", "no_history", "degraded", "guest"];

  it("carry every arm, fallback reason, customer tag or none, and any ranking of the catalog", async () => {
    const tag = await customerTag("k", "m_dec", "c_ref");
    for (const a of arms) {
      for (const f of reasons) {
        for (const c of [tag, undefined]) {
          for (const r of [[], ["cash_app_pay"], DE_DESKTOP, ALL_METHODS]) {
            const issued = claims({ a, f, r, ...(c === undefined ? {} : { c }) });
            expect(await verifyDecision("k", await signDecision("k", issued), "m_dec")).toEqual(issued);
          }
        }
      }
    }
  });

  it("keep the time to the millisecond, and two answers alike are two ids", async () => {
    for (const t of [0, 1767265200123, 2 ** 48 - 1]) expect((await verifyDecision("k", await signDecision("k", claims({ t })), "m_dec"))?.t).toBe(t);
    expect(await signDecision("k", claims())).not.toBe(await signDecision("k", claims()));
  });

  it("are short: 81 characters for a customer's 14 methods, 106 for the whole catalog, in the id charset", async () => {
    const c = await customerTag("k", "m_dec", "c_ref");
    const ids = { customer14: await signDecision("k", claims({ c })), guest14: await signDecision("k", claims({ a: null, f: "guest" })), customerAll: await signDecision("k", claims({ c, r: ALL_METHODS })) };
    expect({ customer14: ids.customer14.length, guest14: ids.guest14.length, customerAll: ids.customerAll.length }).toEqual({ customer14: 81, guest14: 69, customerAll: 106 });
    // Signature last, after the only ".": it is the decision's key in analytics (analytics/store.ts).
    for (const id of Object.values(ids)) expect(id).toMatch(/^dec_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
  });

  it("have one spelling: the payload's last character differing in its unused bits does not verify", async () => {
    for (const r of [DE_DESKTOP, DE_DESKTOP.slice(1), DE_DESKTOP.slice(2)]) {
      const id = await signDecision("k", claims({ r }));
      const dot = id.indexOf(".");
      const last = ALPHABET.indexOf(id[dot - 1]!);
      const unused = (dot - 4) % 4 === 2 ? 4 : (dot - 4) % 4 === 3 ? 2 : 0;
      for (let v = 1; v < 1 << unused; v++) expect(await verifyDecision("k", id.slice(0, dot - 1) + ALPHABET[last ^ v]! + id.slice(dot), "m_dec")).toBeNull();
    }
  });

  it("refuse to name a method outside the catalog (there is no index for it)", async () => {
    await expect(signDecision("k", claims({ r: ["visa", "not_a_method"] }))).rejects.toThrow(/not_a_method/);
  });
});
