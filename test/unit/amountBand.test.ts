import { describe, expect, it } from "vitest";
import { amountBand, minorUnits } from "../../src/personalization/buckets";

describe("amount bands by ISO 4217 minor units", () => {
  it("brings every amount to hundredths first: 15 major units are band 0 in USD, JPY, KWD and CLF alike", () => {
    expect([amountBand(1_500, "USD"), amountBand(15, "JPY"), amountBand(15_000, "KWD"), amountBand(150_000, "CLF")]).toEqual([0, 0, 0, 0]);
    expect([amountBand(60_000, "USD"), amountBand(60, "PYG"), amountBand(600_000, "BHD")]).toEqual([3, 1, 3]);
    // HUF and TWD have 2 decimals in ISO 4217.
    expect([amountBand(1_500, "HUF"), amountBand(1_500, "TWD")]).toEqual([0, 0]);
    expect([minorUnits("KWD"), minorUnits("JPY"), minorUnits("EUR"), minorUnits(null), minorUnits("_comment")]).toEqual([3, 0, 2, 2, 2]);
  });

  it("the band edges, in hundredths: < 20, < 100, < 500, and above", () => {
    expect([1_999, 2_000, 9_999, 10_000, 49_999, 50_000].map((a) => amountBand(a, "EUR"))).toEqual([0, 1, 1, 2, 2, 3]);
    expect(amountBand(null, "EUR")).toBeNull();
  });
});
