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
  return { tokens: limits.burst, updated_ms: now, capacity: limits.burst };
}

/**
 * The state at `now` under the current limits. A changed burst keeps the bucket's fill ratio
 * (an upgrade from a full 100 to 500 is full, not 100/500); a clock that went backwards adds nothing.
 */
export function refill(state: BucketState, limits: BucketLimits, now: number): BucketState {
  const scaled = state.capacity > 0 && state.capacity !== limits.burst ? (state.tokens * limits.burst) / state.capacity : state.tokens;
  const elapsed = Math.max(0, now - state.updated_ms);
  const tokens = Math.min(limits.burst, Math.max(0, scaled) + elapsed * tokensPerMs(limits));
  return { tokens, updated_ms: Math.max(now, state.updated_ms), capacity: limits.burst };
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
