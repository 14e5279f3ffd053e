/**
 * Token-bucket math, pure: time is a parameter (milliseconds since the epoch), nothing here reads a
 * clock or storage. The Durable Object owns the state; this module only says what it becomes.
 */

export interface BucketLimits {
  /** Tokens added per hour, spread evenly (the tier's or override's requests_per_hour). */
  requests_per_hour: number;
  /** Capacity of the bucket. */
  burst: number;
}

export interface BucketState {
  tokens: number;
  /** When `tokens` was last computed (ms). */
  updated_ms: number;
  /** The capacity `tokens` was computed against, so that a changed burst can rescale it. */
  capacity: number;
  /**
   * The hourly rate the bucket refills at since `updated_ms`, so that a changed rate applies only
   * from the moment it is first seen. Absent in buckets stored before it was recorded.
   */
  requests_per_hour?: number;
}

export interface TakeResult {
  allowed: boolean;
  /** Whole tokens left after this request (the RateLimit-Remaining header). */
  remaining: number;
  /** Seconds until a token is available when empty, else until the bucket is full (RateLimit-Reset). */
  reset_seconds: number;
  /** Seconds until the next token (Retry-After of a 429); 0 when a token is available now. */
  retry_after_seconds: number;
  state: BucketState;
}

const MS_PER_HOUR = 3_600_000;
// Float sums like 18.999999999999996 must still count as 19 whole tokens.
const EPSILON = 1e-9;

const tokensPerMs = (limits: BucketLimits) => limits.requests_per_hour / MS_PER_HOUR;

/** A bucket seen for the first time: full. */
export function fullBucket(limits: BucketLimits, now: number): BucketState {
  return { tokens: limits.burst, updated_ms: now, capacity: limits.burst, requests_per_hour: limits.requests_per_hour };
}

/**
 * The state at `now` under `limits`, which may differ from the limits the state was computed under
 * (an admin changed the merchant's rate_limit or tier). The time since `updated_ms` is earned under
 * the state's own limits: first the bucket is settled at its own rate, capped at its own capacity;
 * then a changed burst keeps the fill ratio (an upgrade from a full 100 to 500 is full, not
 * 100/500), capped at the new burst, and the bucket refills at the new rate from `now` on. A bucket
 * stored without its rate (before it was recorded) is settled at the new rate. A clock that went
 * backwards adds nothing.
 */
export function refill(state: BucketState, limits: BucketLimits, now: number): BucketState {
  const own: BucketLimits = { requests_per_hour: state.requests_per_hour ?? limits.requests_per_hour, burst: state.capacity };
  const elapsed = Math.max(0, now - state.updated_ms);
  const settled = Math.min(own.burst, Math.max(0, state.tokens) + elapsed * tokensPerMs(own));
  const scaled = own.burst > 0 && own.burst !== limits.burst ? (settled * limits.burst) / own.burst : settled;
  const tokens = Math.min(limits.burst, Math.max(0, scaled));
  return { tokens, updated_ms: Math.max(now, state.updated_ms), capacity: limits.burst, requests_per_hour: limits.requests_per_hour };
}

/** Seconds (whole, rounded up) until the bucket holds `target` tokens. */
function secondsUntil(tokens: number, target: number, limits: BucketLimits): number {
  const missing = target - tokens;
  if (missing <= EPSILON) return 0;
  return Math.max(1, Math.ceil(missing / tokensPerMs(limits) / 1000 - EPSILON));
}

/** Takes `cost` tokens if the bucket holds them at `now`; a refused request takes nothing. */
export function take(state: BucketState | null, limits: BucketLimits, now: number, cost = 1): TakeResult {
  const current = refill(state ?? fullBucket(limits, now), limits, now);
  const allowed = current.tokens + EPSILON >= cost;
  const next: BucketState = allowed ? { ...current, tokens: Math.max(0, current.tokens - cost) } : current;
  return { allowed, ...describe(next, limits), state: next };
}

/** The header values of a state (already refilled to the present). */
export function describe(state: BucketState, limits: BucketLimits): Omit<TakeResult, "allowed" | "state"> {
  const remaining = Math.floor(state.tokens + EPSILON);
  const retry_after_seconds = secondsUntil(state.tokens, 1, limits);
  const reset_seconds = remaining < 1 ? retry_after_seconds : secondsUntil(state.tokens, limits.burst, limits);
  return { remaining, reset_seconds, retry_after_seconds };
}
