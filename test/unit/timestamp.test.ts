import { describe, expect, it } from "vitest";
import { Timestamp } from "../../src/schemas/common";

describe("Timestamp (ISO 8601 UTC with Z)", () => {
  it("accepts real instants, with or without milliseconds", () => {
    for (const s of ["2026-02-03T15:30:00Z", "2026-02-03T15:30:00.5Z", "2026-02-03T15:30:00.123Z", "2028-02-29T00:00:00Z", "2026-12-31T23:59:59Z"]) {
      expect(Timestamp.safeParse(s).success, s).toBe(true);
    }
  });

  it("rejects days and hours that do not exist instead of rolling them over (Date.parse turns 2026-02-30 into 2026-03-02)", () => {
    for (const s of ["2026-02-30T10:00:00Z", "2026-02-29T10:00:00Z", "2026-11-31T10:00:00Z", "2026-04-31T00:00:00Z", "2026-11-30T24:00:00Z"]) {
      expect(Timestamp.safeParse(s).error?.issues.map((i) => i.message), s).toEqual(["is not a valid date"]);
    }
  });
});
