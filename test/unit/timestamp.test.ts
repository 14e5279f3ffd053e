import { describe, expect, it } from "vitest";
import { Timestamp } from "../../src/schemas/common";
import { FeedbackEvent } from "../../src/schemas/feedback";

describe("Timestamp (ISO 8601 UTC with Z)", () => {
  it("accepts real instants, with or without milliseconds", () => {
    for (const s of ["2026-02-03T15:30:00Z", "2026-02-03T15:30:00.5Z", "2026-02-03T15:30:00.123Z", "2028-02-29T00:00:00Z", "2026-12-31T23:59:59Z"]) {
      expect(Timestamp.safeParse(s).success, s).toBe(true);
    }
  });

  it("rejects days and hours that do not exist instead of rolling them over (Date.parse turns 2026-02-30 into 2026-03-02)", () => {
    for (const s of ["2026-02-30T10:00:00Z", "2026-02-29T10:00:00Z", "2026-11-31T10:00:00Z", "2026-04-31T00:00:00Z", "2026-01-01T10:61:00Z", "2026-01-01T25:00:00Z"]) {
      expect(Timestamp.safeParse(s).error?.issues.map((i) => i.message), s).toEqual(["is not a valid date"]);
    }
  });

  it("gives a malformed timestamp one detail, the format, not also 'is not a valid date' or a bound", () => {
    for (const s of ["garbage", "", "2026-02-03 15:30:00Z", "2026-02-03T15:30Z", "2026-02-03T15:30:00z", "2099-01-01T00:00:00+00:00"]) {
      expect(Timestamp.safeParse(s).error?.issues.map((i) => i.message), s).toEqual(["must be ISO 8601 UTC with Z, e.g. 2026-02-03T15:30:00Z"]);
    }
    const future = FeedbackEvent.safeParse({ customer_id: "c", method_id: "visa", occurred_at: "2099-01-01T00:00:00+00:00" });
    expect(future.error?.issues.map((i) => i.message)).toEqual(["must be ISO 8601 UTC with Z, e.g. 2026-02-03T15:30:00Z"]);
  });

  it("names a leap second and hour 24 in the 400 instead of calling the date invalid", () => {
    for (const s of ["2016-12-31T23:59:60Z", "2016-12-31T23:59:60.5Z", "2026-03-01T10:15:60Z"]) {
      expect(Timestamp.safeParse(s).error?.issues.map((i) => i.message), s).toEqual(["has second 60: leap seconds are not accepted (send :59 of that minute)"]);
    }
    for (const s of ["2026-11-30T24:00:00Z", "2026-11-30T24:00:00.000Z"]) {
      expect(Timestamp.safeParse(s).error?.issues.map((i) => i.message), s).toEqual(["has hour 24: send hour 00 of the next day"]);
    }
  });
});
