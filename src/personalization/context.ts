import { ISO_COUNTRIES } from "../catalog/iso";
import type { DeviceType } from "../schemas/common";
import { setBounded } from "../storage/boundedMemo";
import { amountBand } from "./buckets";

export type TimeOfDay = "night" | "morning" | "afternoon" | "evening";

/** What a /methods or /offers request says explicitly (validated query values). */
export interface ExplicitContext {
  device_type?: DeviceType | undefined;
  /** Used when neither device_type nor the User-Agent says anything (a checkout session's device_type). */
  fallback_device_type?: DeviceType | undefined;
  country?: string | undefined;
  amount?: number | undefined;
  currency?: string | undefined;
  timezone?: string | undefined;
}

/** What the request itself carries (headers and request.cf). */
export interface RequestSignals {
  userAgent?: string | undefined;
  ipCountry?: string | undefined;
  cfTimezone?: string | undefined;
}

/** The context scoring and availability see; null means unknown, which filters nothing. */
export interface ResolvedContext {
  device_type: DeviceType | null;
  country: string | null;
  amount: number | null;
  currency: string | null;
  amount_band: number | null;
  timezone: string;
  time_of_day: TimeOfDay;
  /** 0 = Sunday … 6 = Saturday, in the customer's local time. */
  day_of_week: number;
}

/**
 * Device class from a User-Agent. iPadOS 13+ Safari sends a Macintosh UA by default and reads as
 * desktop; nothing in the UA tells them apart (the drop-in script can pass device_type explicitly).
 */
export function deviceFromUserAgent(ua: string | undefined | null): DeviceType | null {
  if (!ua) return null;
  if (/iPad|Tablet|Kindle|Silk\/|PlayBook|Nexus (7|9|10)\b/i.test(ua)) return "tablet";
  if (/iPhone|iPod|Mobi|Opera Mini|IEMobile|Windows Phone|BlackBerry|BB10/i.test(ua)) return "mobile";
  // An Android app's HTTP stack (Dalvik) says nothing of the form factor: unknown, not a tablet.
  if (/^Dalvik\//i.test(ua)) return null;
  // Android browsers on phones send "Mobile" ("Mobi" above), tablets leave it out.
  if (/Android/i.test(ua)) return "tablet";
  if (/Windows NT|Macintosh|Mac OS X|X11|Linux|CrOS/i.test(ua)) return "desktop";
  return null;
}

/** CF-IPCountry sends XX for unknown and T1 for Tor: neither is a country (nor is anything else outside ISO 3166-1). */
export function countryFromSignal(value: unknown): string | null {
  // request.cf is the edge's object, typed but not checked: anything but text says nothing.
  if (typeof value !== "string" || !value) return null;
  const upper = value.trim().toUpperCase();
  return ISO_COUNTRIES.has(upper) ? upper : null;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat | null {
  let f = formatters.get(timeZone);
  if (f) return f;
  try {
    f = new Intl.DateTimeFormat("en-US", { timeZone, hour: "numeric", hourCycle: "h23", weekday: "short" });
  } catch {
    return null;
  }
  setBounded(formatters, timeZone, f, 1_000); // IANA has ~600 zone names and aliases: real traffic fits
  return f;
}

export function isKnownTimeZone(timeZone: string): boolean {
  return formatterFor(timeZone) !== null;
}

/**
 * The zone's name as IANA spells it, for the echoed context: `europe/amsterdam` is `Europe/Amsterdam`
 * (the case resolvedOptions gives), which a client can find in a zone list. Null for an unknown zone.
 * Only the case is taken from resolvedOptions: for a link it answers the zone CLDR keeps, often the
 * older alias (Asia/Kolkata → Asia/Calcutta, Europe/Kyiv → Europe/Kiev, Pacific/Kanton →
 * Pacific/Enderbury), so a name it replaces is echoed as sent: a valid name of the client's choice,
 * but one sent in another case (`asia/kolkata`) keeps that case, as no runtime data tells its spelling.
 */
export function canonicalTimeZone(timeZone: string): string | null {
  const resolved = formatterFor(timeZone)?.resolvedOptions().timeZone;
  if (resolved === undefined) return null;
  return resolved.toLowerCase() === timeZone.toLowerCase() ? resolved : timeZone;
}

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

export function timeOfDay(hour: number): TimeOfDay {
  if (hour < 6) return "night";
  if (hour < 12) return "morning";
  if (hour < 18) return "afternoon";
  return "evening";
}

/** Local hour and weekday at `nowMs` in `timeZone` (UTC when unknown). */
export function localTime(nowMs: number, timeZone: string): { hour: number; day_of_week: number } {
  const f = formatterFor(timeZone) ?? formatterFor("UTC")!;
  const parts = f.formatToParts(new Date(nowMs));
  const hour = Number(parts.find((p) => p.type === "hour")?.value ?? 0) % 24;
  const day = WEEKDAYS.indexOf(parts.find((p) => p.type === "weekday")?.value ?? "Sun");
  return { hour, day_of_week: Math.max(0, day) };
}

/** Explicit values win (a merchant backend calls from its own server), then the request's signals. */
export function resolveContext(explicit: ExplicitContext, signals: RequestSignals, nowMs: number): ResolvedContext {
  const device_type = explicit.device_type ?? deviceFromUserAgent(signals.userAgent) ?? explicit.fallback_device_type ?? null;
  const country = explicit.country ?? countryFromSignal(signals.ipCountry);
  const tzCandidate: unknown = explicit.timezone ?? signals.cfTimezone;
  const timezone = (typeof tzCandidate === "string" && tzCandidate && canonicalTimeZone(tzCandidate)) || "UTC";
  const { hour, day_of_week } = localTime(nowMs, timezone);
  const amount = explicit.amount ?? null;
  const currency = explicit.currency ?? null;
  return {
    device_type,
    country,
    amount,
    currency,
    amount_band: amountBand(amount, currency),
    timezone,
    time_of_day: timeOfDay(hour),
    day_of_week,
  };
}
