import type { DeviceType } from "../schemas/common";

/**
 * Basket size classes in minor units. Currency-naive on purpose: the bands are coarse enough that
 * the major currencies with 2 decimals fall into comparable classes; zero-decimal currencies (JPY,
 * KRW) are scaled by 100 first.
 */
const ZERO_DECIMAL = new Set(["JPY", "KRW", "VND", "CLP", "ISK", "HUF", "TWD", "UGX", "XAF", "XOF"]);
const BAND_UPPER_BOUNDS = [2_000, 10_000, 50_000]; // <20, <100, <500, >=500 major units

export function amountBand(amount: number | undefined | null, currency?: string | null): number | null {
  if (amount === undefined || amount === null) return null;
  const normalized = currency && ZERO_DECIMAL.has(currency) ? amount * 100 : amount;
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
