import { describe, expect, it } from "vitest";
import { isAvailable } from "../../src/catalog/availability";
import { CATALOG, CATALOG_BY_ID, type CatalogMethod } from "../../src/catalog/methods";

const method = (id: string) => CATALOG_BY_ID.get(id)!;

describe("catalog availability rules", () => {
  it("filters by country and currency", () => {
    expect(isAvailable(method("ideal"), { country: "NL", currency: "EUR" })).toBe(true);
    expect(isAvailable(method("ideal"), { country: "DE", currency: "EUR" })).toBe(false);
    expect(isAvailable(method("ideal"), { country: "NL", currency: "USD" })).toBe(false);
    expect(isAvailable(method("pix"), { country: "BR", currency: "BRL" })).toBe(true);
    expect(isAvailable(method("pix"), { country: "US" })).toBe(false);
  });

  it("filters by the basket bounds of the currency", () => {
    expect(isAvailable(method("klarna"), { country: "US", currency: "USD", amount: 3499 })).toBe(false);
    expect(isAvailable(method("klarna"), { country: "US", currency: "USD", amount: 3500 })).toBe(true);
    expect(isAvailable(method("affirm"), { currency: "USD", amount: 3_000_001 })).toBe(false);
    // A bound of another currency does not apply.
    expect(isAvailable(method("afterpay"), { currency: "AUD", amount: 300_000 })).toBe(false);
    expect(isAvailable(method("afterpay"), { currency: "USD", amount: 300_000 })).toBe(true);
  });

  it("filters by device class", () => {
    const mobileOnly: CatalogMethod = { id: "app_wallet", name: "App wallet", kind: "wallet", countries: "*", currencies: "*", devices: ["mobile", "tablet"] };
    expect(isAvailable(mobileOnly, { device_type: "mobile" })).toBe(true);
    expect(isAvailable(mobileOnly, { device_type: "desktop" })).toBe(false);
    // An unknown device filters nothing.
    expect(isAvailable(mobileOnly, {})).toBe(true);
  });

  it("an unknown dimension filters nothing", () => {
    expect(isAvailable(method("ideal"), {})).toBe(true);
    expect(isAvailable(method("klarna"), { amount: 1 })).toBe(true); // no currency, no bound to apply
  });

  it("every catalog entry is well formed", () => {
    expect(CATALOG.length).toBeGreaterThanOrEqual(20);
    expect(new Set(CATALOG.map((m) => m.id)).size).toBe(CATALOG.length);
    for (const m of CATALOG) {
      expect(m.id).toMatch(/^[a-z0-9_]{1,64}$/);
      expect(m.devices.length).toBeGreaterThan(0);
      if (m.countries !== "*") for (const c of m.countries) expect(c).toMatch(/^[A-Z]{2}$/);
      if (m.currencies !== "*") for (const c of m.currencies) expect(c).toMatch(/^[A-Z]{3}$/);
    }
  });
});
