import { parseRetryAfter, Tap2Error } from "./errors";

/** Statuses that mean "try again later": rate limited, or a dependency (e.g. the queue) was down. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 503]);

export interface RetryPolicy {
  /** Retries after the first attempt (0 = no retry). */
  maxRetries: number;
  /** Per attempt: until the response headers arrive. */
  timeoutMs: number;
  /** First backoff step; doubles each retry (with jitter) when the server sends no Retry-After. */
  baseDelayMs: number;
  /** A longer wait than this (Retry-After or backoff) is not waited out: the 429/503 is returned. */
  maxRetryDelayMs: number;
  fetch: (request: Request) => Promise<Response>;
  sleep: (ms: number) => Promise<void>;
}

/** Milliseconds to wait before retry number `retry` (0-based): Retry-After wins, else exponential backoff with jitter. */
export function retryDelayMs(retry: number, retryAfterSeconds: number | null, baseDelayMs: number, random = Math.random): number {
  if (retryAfterSeconds !== null) return Math.ceil(retryAfterSeconds * 1000);
  const step = baseDelayMs * 2 ** retry;
  return Math.round(step / 2 + (random() * step) / 2);
}

/**
 * A fetch for openapi-fetch that retries 429 and 503. Each attempt sends a clone of the same
 * request, so a body and its idempotency key are identical across retries.
 */
export function retryingFetch(policy: RetryPolicy): (request: Request) => Promise<Response> {
  return async (request) => {
    for (let retry = 0; ; retry += 1) {
      const response = await attempt(request.clone(), policy);
      if (!RETRYABLE_STATUSES.has(response.status) || retry >= policy.maxRetries) return response;
      const delay = retryDelayMs(retry, parseRetryAfter(response.headers.get("Retry-After"), Date.now()), policy.baseDelayMs);
      if (delay > policy.maxRetryDelayMs) return response;
      await response.body?.cancel();
      await policy.sleep(delay);
    }
  };
}

async function attempt(request: Request, policy: RetryPolicy): Promise<Response> {
  const timeout = AbortSignal.timeout(policy.timeoutMs);
  try {
    // redirect "error": the API never redirects, and a followed redirect would carry X-API-Key to
    // whatever host it names (fetch drops only Authorization on a cross-origin redirect).
    return await policy.fetch(new Request(request, { signal: AbortSignal.any([request.signal, timeout]), redirect: "error" }));
  } catch (err) {
    throw transportError(err, timeout.aborted, policy.timeoutMs);
  }
}

/** Wraps a failure that produced no HTTP answer (or no full body) in the client's one error type. */
export function transportError(err: unknown, timedOut: boolean, timeoutMs: number): Tap2Error {
  if (err instanceof Tap2Error) return err;
  if (timedOut || (err instanceof DOMException && err.name === "TimeoutError")) {
    return new Tap2Error({ status: 0, code: "TIMEOUT", message: `No answer within ${timeoutMs} ms`, cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new Tap2Error({ status: 0, code: "NETWORK_ERROR", message: `Request failed: ${message}`, cause: err });
}
