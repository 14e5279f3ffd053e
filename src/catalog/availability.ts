import type { DeviceType } from "../schemas/common";
import type { CatalogMethod } from "./methods";

/** What of the checkout is known; an unknown dimension filters nothing. */
export interface AvailabilityContext {
  country?: string | undefined;
  currency?: string | undefined;
  device_type?: DeviceType | undefined;
  amount?: number | undefined;
}

export function isAvailable(method: CatalogMethod, ctx: AvailabilityContext): boolean {
  if (ctx.country && method.countries !== "*" && !method.countries.includes(ctx.country)) return false;
  if (ctx.currency && method.currencies !== "*" && !method.currencies.includes(ctx.currency)) return false;
  if (ctx.device_type && !method.devices.includes(ctx.device_type)) return false;
  if (ctx.amount !== undefined && ctx.currency && method.amount) {
    const bounds = method.amount[ctx.currency];
    if (bounds && ((bounds.min !== undefined && ctx.amount < bounds.min) || (bounds.max !== undefined && ctx.amount > bounds.max))) {
      return false;
    }
  }
  return true;
}
