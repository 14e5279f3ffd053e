import { describe, expect, it } from "vitest";
import { fullBucket, refill, take, type BucketLimits, type BucketState } from "../../src/ratelimit/bucket";
import { limitsFor, TIER_LIMITS } from "../../src/ratelimit/tiers";

const T0 = Date.parse("2026-03-01T12:00:00Z");
const perSecond: BucketLimits = { requests_per_hour: 3600, burst: 19 }; // one token per second

function drain(limits: BucketLimits, n: number, now = T0): BucketState | null {
  let state: BucketState | null = null;
  for (let i = 0; i < n; i++) state = take(state, limits, now).state;
  return state;
}

describe("take", () => {
  it("starts full: the first request leaves burst - 1 and reports the seconds until full", () => {
    const r = take(null, perSecond, T0);
    expect(r.allowed).toBe(true);
    expect(r.remaining).toBe(18);
    expect(r.reset_seconds).toBe(1);
    expect(r.retry_after_seconds).toBe(0);
  });

  it("admits exactly burst requests at one instant, then refuses without taking anything", () => {
    let state: BucketState | null = null;
    const allowed: boolean[] = [];
    for (let i = 0; i < 25; i++) {
      const r = take(state, perSecond, T0);
      allowed.push(r.allowed);
      state = r.state;
    }
    expect(allowed.filter(Boolean)).toHaveLength(19);
    expect(allowed.slice(19).every((a) => !a)).toBe(true);
    const refused = take(state, perSecond, T0);
    expect(refused).toMatchObject({ allowed: false, remaining: 0, reset_seconds: 1, retry_after_seconds: 1 });
    expect(refused.state.tokens).toBe(0);
  });

  it("reset counts seconds until full when tokens remain, until the next token when empty", () => {
    const slow: BucketLimits = { requests_per_hour: 36, burst: 10 }; // one token per 100 s
    const afterThree = drain(slow, 3);
    const r = take(afterThree, slow, T0);
    expect(r.remaining).toBe(6);
    expect(r.reset_seconds).toBe(400);
    const empty = drain(slow, 10);
    const refused = take(empty, slow, T0 + 30_000);
    expect(refused).toMatchObject({ allowed: false, remaining: 0, reset_seconds: 70, retry_after_seconds: 70 });
  });

  it("refills requests_per_hour / 3600 tokens per second, capped at burst", () => {
    const empty = drain(perSecond, 19);
    expect(take(empty, perSecond, T0 + 999).allowed).toBe(false);
    const later = take(empty, perSecond, T0 + 5_000);
    expect(later).toMatchObject({ allowed: true, remaining: 4 });
    const muchLater = take(empty, perSecond, T0 + 3_600_000);
    expect(muchLater.remaining).toBe(18);
  });

  it("refills fractional tokens over time (starter: one token every 3.6 s)", () => {
    const starter = TIER_LIMITS.starter;
    const empty = drain(starter, 100);
    expect(take(empty, starter, T0 + 3_599).allowed).toBe(false);
    expect(take(empty, starter, T0 + 3_600).allowed).toBe(true);
    expect(take(empty, starter, T0).retry_after_seconds).toBe(4);
  });

  it("a clock that goes backwards adds no tokens", () => {
    const empty = drain(perSecond, 19, T0 + 10_000);
    const r = take(empty, perSecond, T0);
    expect(r.allowed).toBe(false);
    expect(r.state.updated_ms).toBe(T0 + 10_000);
  });
});

describe("refill with changed limits", () => {
  it("keeps the fill ratio when the burst changes", () => {
    const half: BucketState = { tokens: 50, updated_ms: T0, capacity: 100 };
    expect(refill(half, { requests_per_hour: 1, burst: 500 }, T0).tokens).toBe(250);
    expect(refill(half, { requests_per_hour: 1, burst: 10 }, T0).tokens).toBe(5);
  });

  it("a full bucket stays full across an upgrade; an empty one stays empty", () => {
    expect(refill(fullBucket(TIER_LIMITS.starter, T0), TIER_LIMITS.growth, T0).tokens).toBe(500);
    const empty: BucketState = { tokens: 0, updated_ms: T0, capacity: 100 };
    expect(refill(empty, TIER_LIMITS.growth, T0).tokens).toBe(0);
  });

  it("credits the time since the last request at the old rate, then continues at the new one", () => {
    const empty = drain(perSecond, 19)!; // one token per second
    const faster: BucketLimits = { requests_per_hour: 7200, burst: 19 };
    const changed = refill(empty, faster, T0 + 5_000);
    expect(changed.tokens).toBeCloseTo(5, 9); // 5 s at the old rate, not 10 at the new one
    expect(changed).toMatchObject({ capacity: 19, requests_per_hour: 7200 });
    expect(refill(changed, faster, T0 + 6_000).tokens).toBeCloseTo(7, 9); // then two per second
    const slower = refill(empty, { requests_per_hour: 360, burst: 19 }, T0 + 5_000);
    expect(slower.tokens).toBeCloseTo(5, 9); // a downgrade does not take back what was earned
  });

  it("settles at the old capacity before rescaling to the new one, capped at the new burst", () => {
    const nearlyFull: BucketState = { tokens: 15, updated_ms: T0, capacity: 20, requests_per_hour: 3600 };
    // 10 s at one per second fills the old bucket (20/20, not 25/20), which rescales to a full 10.
    expect(refill(nearlyFull, { requests_per_hour: 36, burst: 10 }, T0 + 10_000).tokens).toBe(10);
    // 2 s: 17/20 rescales to 8.5/10; a larger bucket keeps the ratio too (17/20 → 85/100).
    expect(refill(nearlyFull, { requests_per_hour: 36, burst: 10 }, T0 + 2_000).tokens).toBeCloseTo(8.5, 9);
    expect(refill(nearlyFull, { requests_per_hour: 360_000, burst: 100 }, T0 + 2_000).tokens).toBeCloseTo(85, 9);
  });

  it("a bucket stored without its rate (before it was recorded) is settled at the new rate", () => {
    const legacy: BucketState = { tokens: 0, updated_ms: T0, capacity: 19 };
    expect(refill(legacy, { requests_per_hour: 7200, burst: 19 }, T0 + 1_000).tokens).toBe(2);
  });
});

describe("limitsFor", () => {
  it("uses the tier table of API.md", () => {
    expect(limitsFor({ tier: "starter", rate_limit: null })).toEqual({ requests_per_hour: 1000, burst: 100 });
    expect(limitsFor({ tier: "growth", rate_limit: null })).toEqual({ requests_per_hour: 5000, burst: 500 });
    expect(limitsFor({ tier: "scale", rate_limit: null })).toEqual({ requests_per_hour: 10000, burst: 1000 });
  });

  it("an explicit rate_limit wins over the tier", () => {
    expect(limitsFor({ tier: "scale", rate_limit: { requests_per_hour: 60, burst: 5 } })).toEqual({ requests_per_hour: 60, burst: 5 });
  });
});
