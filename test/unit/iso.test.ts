import { describe, expect, it } from "vitest";
import { ISO_COUNTRIES, ISO_CURRENCIES } from "../../src/catalog/iso";
import { CATALOG } from "../../src/catalog/methods";
import { Country, Currency } from "../../src/schemas/common";

describe("ISO code lists", () => {
  it("hold the ISO 4217 currencies and ISO 3166-1 countries, and nothing of the right shape that is neither", () => {
    expect(ISO_CURRENCIES.size).toBe(183);
    expect(ISO_COUNTRIES.size).toBe(250); // 249 + XK
    for (const code of ["USD", "EUR", "GBP", "JPY", "BRL", "XCG", "ZWG"]) expect(ISO_CURRENCIES.has(code), code).toBe(true);
    for (const code of ["US", "GB", "NL", "BR", "XK", "AX"]) expect(ISO_COUNTRIES.has(code), code).toBe(true);
    for (const code of ["UDS", "EUD", "ZZZ", "usd", "", "US"]) expect(ISO_CURRENCIES.has(code), code).toBe(false);
    for (const code of ["UK", "EU", "ZZ", "XX", "T1", "us", ""]) expect(ISO_COUNTRIES.has(code), code).toBe(false);
  });

  it("the schemas use them, with a message that says which rule failed", () => {
    expect(Currency.safeParse("EUR").success).toBe(true);
    expect(Currency.safeParse("UDS").error?.issues.map((i) => i.message)).toEqual(["is not an ISO 4217 currency code"]);
    expect(Currency.safeParse("usd").error?.issues[0]?.message).toBe("must be an ISO 4217 code of three capital letters");
    expect(Country.safeParse("UK").error?.issues.map((i) => i.message)).toEqual(["is not an ISO 3166-1 alpha-2 country code"]);
  });

  it("every country and currency the catalog names is a real code (a typo there would hide a method silently)", () => {
    const bad: string[] = [];
    for (const m of CATALOG) {
      if (m.countries !== "*") for (const c of m.countries) if (!ISO_COUNTRIES.has(c)) bad.push(`${m.id}: country ${c}`);
      if (m.currencies !== "*") for (const c of m.currencies) if (!ISO_CURRENCIES.has(c)) bad.push(`${m.id}: currency ${c}`);
      for (const c of Object.keys(m.amount ?? {})) if (!ISO_CURRENCIES.has(c)) bad.push(`${m.id}: amount currency ${c}`);
    }
    expect(bad).toEqual([]);
  });
});
