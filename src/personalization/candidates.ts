import { isAvailable } from "../catalog/availability";
import { CATALOG_BY_ID } from "../catalog/methods";
import type { ResolvedContext } from "./context";

type AvailabilityFields = Pick<ResolvedContext, "device_type" | "country" | "currency" | "amount">;

/**
 * The hard filters, in the merchant's default order: enabled by the merchant, available in the
 * context (catalog rules; an unknown dimension filters nothing) and not excluded by the customer.
 */
export function candidateMethods(merchantMethods: readonly string[], ctx: AvailabilityFields, excluded: readonly string[] = []): string[] {
  const excludedSet = new Set(excluded);
  const availability = {
    device_type: ctx.device_type ?? undefined,
    country: ctx.country ?? undefined,
    currency: ctx.currency ?? undefined,
    amount: ctx.amount ?? undefined,
  };
  return merchantMethods.filter((id) => {
    const method = CATALOG_BY_ID.get(id);
    return method !== undefined && !excludedSet.has(id) && isAvailable(method, availability);
  });
}
