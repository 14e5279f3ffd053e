import { describe, expect, it } from "vitest";
import { countryFromSignal, deviceFromUserAgent, localTime, resolveContext, timeOfDay } from "../../src/personalization/context";

const UA = {
  iphone: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
  ipad: "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
  androidPhone: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
  androidTablet: "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  kindle: "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/124.1.1 like Chrome/124.0.0.0 Safari/537.36",
  chromeWindows: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  safariMac: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
  firefoxLinux: "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
  edge: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
  chromebook: "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  firefoxAndroid: "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
  samsungBrowser: "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
  // Android phone browsers that say "Mobi" or "Opera Mini" but not "Mobile".
  operaMiniAndroid: "Opera/9.80 (Android; Opera Mini/7.5.33361/31.1448; U; en) Presto/2.8.119 Version/11.1010",
  operaMobileAndroid: "Opera/9.80 (Android 2.3.3; Linux; Opera Mobi/ADR-1111101157; U; es-ES) Presto/2.9.201 Version/11.50",
  firefoxAndroidTablet: "Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0",
};

describe("deviceFromUserAgent", () => {
  it.each([
    ["iphone", "mobile"], ["androidPhone", "mobile"], ["firefoxAndroid", "mobile"], ["samsungBrowser", "mobile"], ["operaMiniAndroid", "mobile"], ["operaMobileAndroid", "mobile"],
    ["ipad", "tablet"], ["androidTablet", "tablet"], ["kindle", "tablet"], ["firefoxAndroidTablet", "tablet"],
    ["chromeWindows", "desktop"], ["safariMac", "desktop"], ["firefoxLinux", "desktop"], ["edge", "desktop"], ["chromebook", "desktop"],
  ] as const)("%s → %s", (name, device) => {
    expect(deviceFromUserAgent(UA[name])).toBe(device);
  });

  it("knows nothing from a missing or non-browser User-Agent", () => {
    expect(deviceFromUserAgent(undefined)).toBeNull();
    expect(deviceFromUserAgent("")).toBeNull();
    expect(deviceFromUserAgent("curl/8.5.0")).toBeNull();
    // An Android app's HTTP stack, on phones and tablets alike: the form factor is not in it.
    expect(deviceFromUserAgent("Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UQ1A.240205.004)")).toBeNull();
  });
});

describe("countryFromSignal", () => {
  it("accepts alpha-2 codes and drops CF's unknown (XX) and Tor (T1)", () => {
    expect(countryFromSignal("NL")).toBe("NL");
    expect(countryFromSignal("us")).toBe("US");
    expect(countryFromSignal("XX")).toBeNull();
    expect(countryFromSignal("T1")).toBeNull();
    expect(countryFromSignal("USA")).toBeNull();
    expect(countryFromSignal("QQ")).toBeNull(); // two letters, no country
    expect(countryFromSignal("xk")).toBe("XK"); // Kosovo: user-assigned, but what CF-IPCountry sends
    expect(countryFromSignal(undefined)).toBeNull();
  });

  it("ignores a request.cf country or time zone that is not text (the object is typed, not checked)", () => {
    for (const odd of [42, {}, ["NL"], true]) expect(countryFromSignal(odd)).toBeNull();
    const ctx = resolveContext({}, { ipCountry: 42 as unknown as string, cfTimezone: 7 as unknown as string }, Date.UTC(2026, 1, 3, 12));
    expect(ctx).toMatchObject({ country: null, timezone: "UTC" });
  });
});

describe("local time", () => {
  const tuesdayEvening = Date.UTC(2026, 1, 3, 19, 30); // Tue 3 Feb 2026, 19:30 UTC
  it("buckets hours into time of day", () => {
    expect([0, 5, 6, 11, 12, 17, 18, 23].map(timeOfDay)).toEqual(["night", "night", "morning", "morning", "afternoon", "afternoon", "evening", "evening"]);
  });
  it("reads the hour and weekday in the customer's time zone", () => {
    expect(localTime(tuesdayEvening, "UTC")).toEqual({ hour: 19, day_of_week: 2 });
    expect(localTime(tuesdayEvening, "Asia/Tokyo")).toEqual({ hour: 4, day_of_week: 3 });
    expect(localTime(tuesdayEvening, "America/Los_Angeles")).toEqual({ hour: 11, day_of_week: 2 });
  });

  it("resolveContext: explicit values win, then headers, then cf; unknown time zones fall back to UTC", () => {
    const signals = { userAgent: UA.iphone, ipCountry: "DE", cfTimezone: "Asia/Tokyo" };
    expect(resolveContext({}, signals, tuesdayEvening)).toEqual({
      device_type: "mobile", country: "DE", amount: null, currency: null, amount_band: null, timezone: "Asia/Tokyo", time_of_day: "night", day_of_week: 3,
    });
    expect(resolveContext({ device_type: "desktop", country: "NL", timezone: "Europe/Amsterdam", amount: 25_000, currency: "EUR" }, signals, tuesdayEvening)).toMatchObject({
      device_type: "desktop", country: "NL", timezone: "Europe/Amsterdam", time_of_day: "evening", day_of_week: 2, amount: 25_000, amount_band: 2,
    });
    expect(resolveContext({}, { cfTimezone: "Nowhere/Land" }, tuesdayEvening)).toMatchObject({ timezone: "UTC", device_type: null, country: null });
    // A zone, explicit or the edge's, is echoed in IANA's case; a link resolvedOptions would swap for an older alias as sent.
    expect(resolveContext({}, { cfTimezone: "europe/amsterdam" }, tuesdayEvening).timezone).toBe("Europe/Amsterdam");
    expect(resolveContext({ timezone: "asia/tokyo" }, signals, tuesdayEvening).timezone).toBe("Asia/Tokyo");
    expect(resolveContext({}, { cfTimezone: "Asia/Kolkata" }, tuesdayEvening).timezone).toBe("Asia/Kolkata");
  });
});
