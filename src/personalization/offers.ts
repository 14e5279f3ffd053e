import type { Offer } from "../schemas/merchant";
import type { DeviceType } from "../schemas/common";

export interface OfferContext {
  device_type: DeviceType | null;
  country: string | null;
  amount: number | null;
  currency: string | null;
}

export interface RankedOffer {
  offer_id: string;
  method_id: string;
  title: string;
  description: string;
  discount_type: "percent" | "fixed";
  discount_value: number;
  /** Probability that this customer pays with the offer's method (the likelihood part of expected value). */
  relevance: number;
}

/** Basket used to value a percent discount when the request names no amount (minor units). */
export const REFERENCE_AMOUNT = 10_000;

/**
 * Active (starts_at ≤ now < ends_at) and matching the context. Like availability, an unknown
 * context dimension filters nothing: an offer with min_amount is shown when the amount is unknown.
 */
export function isOfferEligible(offer: Offer, ctx: OfferContext, nowIso: string): boolean {
  // As instants, not strings: "…12:00:00Z" sorts after "…12:00:00.400Z" ('Z' > '.').
  const now = Date.parse(nowIso);
  if (offer.starts_at && Date.parse(offer.starts_at) > now) return false;
  if (offer.ends_at && Date.parse(offer.ends_at) <= now) return false;
  if (offer.min_amount !== undefined && ctx.amount !== null && ctx.amount < offer.min_amount) return false;
  if (offer.currency && ctx.currency && offer.currency !== ctx.currency) return false;
  if (offer.countries && ctx.country && !offer.countries.includes(ctx.country)) return false;
  if (offer.device_types && ctx.device_type && !offer.device_types.includes(ctx.device_type)) return false;
  return true;
}

/**
 * The discount in minor units for this basket (fixed values are minor units already). A fixed
 * discount is worth at most the basket: "50 off" on a basket of 10 saves 10, so it does not outrank
 * a likelier offer on a value the customer cannot get.
 */
export function offerValue(offer: Offer, amount: number | null): number {
  if (offer.discount_type === "fixed") return amount === null ? offer.discount_value : Math.min(offer.discount_value, amount);
  return ((amount ?? Math.max(offer.min_amount ?? 0, REFERENCE_AMOUNT)) * offer.discount_value) / 100;
}

/**
 * Eligible offers whose method is in the answer (available, not excluded), ranked by expected value
 * to this customer: P(pays with the offer's method) × value — or, for a guest (API.md §7), by
 * popularity alone: P(method) from the population, the discount not weighed. Ties keep the
 * merchant's order.
 */
export function rankOffers(offers: readonly Offer[], probabilities: ReadonlyMap<string, number>, ctx: OfferContext, nowIso: string, by: "expected_value" | "popularity" = "expected_value"): RankedOffer[] {
  return offers
    .map((offer, i) => ({ offer, i, p: probabilities.get(offer.method_id) }))
    .filter((x): x is { offer: Offer; i: number; p: number } => x.p !== undefined && isOfferEligible(x.offer, ctx, nowIso))
    .map((x) => ({ ...x, ev: by === "popularity" ? x.p : x.p * offerValue(x.offer, ctx.amount) }))
    .sort((a, b) => b.ev - a.ev || b.p - a.p || a.i - b.i)
    .map(({ offer, p }) => ({
      offer_id: offer.offer_id,
      method_id: offer.method_id,
      title: offer.title,
      description: offer.description ?? "",
      discount_type: offer.discount_type,
      discount_value: offer.discount_value,
      relevance: p,
    }));
}
