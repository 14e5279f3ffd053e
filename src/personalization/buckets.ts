import MINOR_UNITS from "../catalog/minor-units.json";
import type { DeviceType } from "../schemas/common";

/**
 * Basket size classes. Amounts are in minor units (API.md §1), whose size is the currency's: ISO
 * 4217 gives most currencies 2 decimals, some 0 (JPY, KRW), some 3 (KWD, BHD) or 4 (CLF). An amount
 * is brought to hundredths first, so 15.000 KWD, 15.00 USD and 15 JPY·100 land alike. Otherwise
 * currency-naive: no exchange rate, so the bands (a factor of 5 apart) hold comparable baskets for
 * currencies of similar worth (USD, EUR, GBP, CHF, PLN) but not for JPY, KRW, INR, HUF…, whose
 * ordinary baskets all land in the top band (docs/personalization.md). An unknown or missing
 * currency counts as 2 decimals.
 */
const EXPONENTS: Readonly<Record<string, unknown>> = MINOR_UNITS;
const BAND_UPPER_BOUNDS = [2_000, 10_000, 50_000]; // <20, <100, <500, >=500 major units

/** The currency's ISO 4217 minor units (decimals); 2 unless listed in src/catalog/minor-units.json. */
export function minorUnits(currency?: string | null): number {
  const e = currency ? EXPONENTS[currency] : undefined;
  return typeof e === "number" ? e : 2;
}

export function amountBand(amount: number | undefined | null, currency?: string | null): number | null {
  if (amount === undefined || amount === null) return null;
  const normalized = amount * 10 ** (2 - minorUnits(currency));
  const band = BAND_UPPER_BOUNDS.findIndex((upper) => normalized < upper);
  return band === -1 ? BAND_UPPER_BOUNDS.length : band;
}

/** Bucket keys of method_stats (migration 0002). */
export const bucketKey = {
  all: "*",
  device: (d: DeviceType) => `device:${d}`,
  amount: (band: number) => `amount:${band}`,
  country: (c: string) => `country:${c}`,
} as const;

/** Segment keys of method_popularity (migration 0002). */
export const segmentKey = {
  all: "*",
  country: (c: string) => `country:${c}`,
  device: (d: DeviceType) => `device:${d}`,
  countryDevice: (c: string, d: DeviceType) => `country:${c}|device:${d}`,
} as const;
