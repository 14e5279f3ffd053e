import { parseRetryAfter, Tap2Error } from "./errors";

/** Methods whose repeat does what the first did (RFC 9110 §9.2.2), so a 503 may be resent. */
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "PUT", "DELETE"]);

export interface RetryPolicy {
  /** Retries after the first attempt (0 = no retry). */
  maxRetries: number;
  /** Per attempt: connecting, sending, the headers and the whole body (the signal also aborts the body read). */
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
 * Whether this answer may be met by sending the request again. A 429 always: the rate limiter
 * refused it before anything ran. A 503 may come from a step after the write committed (a second
 * restore then answers 404), so only a request the API treats as idempotent is resent: an
 * idempotent method, an Idempotency-Key, or single feedback with its event_id (stored once per
 * (merchant, event_id)). Anything else, e.g. restoreCustomer, returns its 503 to the caller.
 */
export async function mayRetry(status: number, request: Request): Promise<boolean> {
  if (status === 429) return true;
  if (status !== 503) return false;
  if (IDEMPOTENT_METHODS.has(request.method) || request.headers.has("Idempotency-Key")) return true;
  return request.method === "POST" && new URL(request.url).pathname.endsWith("/v1/personalize/feedback") && hasEventId(await request.clone().text());
}

function hasEventId(body: string): boolean {
  try {
    const event: unknown = JSON.parse(body);
    return typeof event === "object" && event !== null && typeof (event as { event_id?: unknown }).event_id === "string";
  } catch {
    return false;
  }
}

/**
 * A fetch for openapi-fetch that retries 429, and 503 where resending is safe ({@link mayRetry}).
 * Each attempt sends a clone of the same request, so a body and its idempotency key are identical
 * across retries.
 */
export function retryingFetch(policy: RetryPolicy): (request: Request) => Promise<Response> {
  return async (request) => {
    for (let retry = 0; ; retry += 1) {
      // The caller's signal (request.signal): nothing more is sent once it fired.
      if (request.signal.aborted) throw abortedError(request.signal);
      const response = await attempt(request.clone(), request.signal, policy);
      if (retry >= policy.maxRetries || !(await mayRetry(response.status, request))) return response;
      const delay = retryDelayMs(retry, parseRetryAfter(response.headers.get("Retry-After"), Date.now()), policy.baseDelayMs);
      if (delay > policy.maxRetryDelayMs) return response;
      await sleepUnlessAborted(policy.sleep, delay, request.signal);
    }
  };
}

/** The wait before a retry, cut short (ABORTED) when the caller's signal fires. */
async function sleepUnlessAborted(sleep: (ms: number) => Promise<void>, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) throw abortedError(signal);
  let onAbort = (): void => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortedError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    await Promise.race([sleep(ms), aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** The caller's AbortSignal fired: the call ends, whatever it was doing (status 0, the signal's reason as cause). */
export function abortedError(signal: AbortSignal): Tap2Error {
  return new Tap2Error({ status: 0, code: "ABORTED", message: "The call was aborted by its AbortSignal", cause: signal.reason });
}

/**
 * The message of a refused 3xx (code `REDIRECT`, the answer's status): the Python and PHP clients
 * say the same. A redirect usually means a wrong base URL (`http://` for `https://`, another host).
 */
export const REDIRECT_MESSAGE = "Refused a redirect (the API never redirects: check the base URL)";

/**
 * One attempt: `request` (a clone, for its body) sent with the caller's `signal` and the attempt's
 * timeout, and its answer's whole body read under both, so that a failure while it is read (the
 * timeout, an abort, a body cut short) is this attempt's Tap2Error, for the wrapped methods and
 * `raw` alike, and what openapi-fetch parses afterwards is in memory.
 *
 * Both waits, for the headers and for each piece of the body, also end on their own when a signal
 * fires ({@link untilAborted}), rather than only through the fetch's signal: Node's fetch (undici)
 * follows a Request's signal through WeakRefs (a clone's, and its own copy of the Request), so
 * after a garbage collection an abort or the timeout may no longer reach a fetch in progress.
 */
async function attempt(request: Request, callerSignal: AbortSignal, policy: RetryPolicy): Promise<Response> {
  const timeout = AbortSignal.timeout(policy.timeoutMs);
  const signals = [callerSignal, timeout];
  let response: Response;
  try {
    // redirect "manual", and a redirect refused below: the API never redirects, and a followed one
    // would carry X-API-Key to whatever host it names (fetch drops only Authorization on a
    // cross-origin redirect). Not "error": Cloudflare Workers' fetch refuses that mode outright.
    const fetching = policy.fetch(new Request(request, { signal: AbortSignal.any(signals), redirect: "manual" }));
    // An answer that comes after all the same is let go of.
    response = await untilAborted(fetching, signals, () => void fetching.then((late) => late.body?.cancel(), () => undefined));
  } catch (err) {
    throw transportError(err, timeout.aborted, policy.timeoutMs, callerSignal);
  }
  // Node, Deno, Bun and Workers hand back the 3xx itself; a browser an opaque "opaqueredirect" (status 0, no headers).
  if ((response.type as string) === "opaqueredirect" || (response.status >= 300 && response.status < 400)) {
    await response.body?.cancel().catch(() => undefined);
    throw new Tap2Error({ status: response.status, code: "REDIRECT", message: REDIRECT_MESSAGE, requestId: response.headers.get("X-Request-Id") });
  }
  if (response.body === null || response.status === 204 || response.status === 205) return response; // no body to read
  const reader = response.body.getReader();
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  try {
    for (;;) {
      const { done, value } = await untilAborted(reader.read(), signals, () => void reader.cancel().catch(() => undefined));
      if (done) break;
      chunks.push(value);
    }
  } catch (err) {
    throw transportError(err, timeout.aborted, policy.timeoutMs, callerSignal);
  }
  return new Response(new Blob(chunks), { status: response.status, statusText: response.statusText, headers: response.headers });
}

/** `promise`, or a rejection with the reason of the first of `signals` to fire before it settles (then `onAbort` runs). */
function untilAborted<T>(promise: Promise<T>, signals: AbortSignal[], onAbort: () => void): Promise<T> {
  const fired = signals.find((signal) => signal.aborted);
  if (fired) {
    onAbort();
    return Promise.reject(fired.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const abort = (event: Event) => {
      done();
      onAbort();
      reject((event.target as AbortSignal).reason);
    };
    const done = () => signals.forEach((signal) => signal.removeEventListener("abort", abort));
    signals.forEach((signal) => signal.addEventListener("abort", abort));
    promise.then(
      (value) => (done(), resolve(value)),
      (err: unknown) => (done(), reject(err)),
    );
  });
}

/**
 * Wraps a failure that produced no HTTP answer (or no full body) in the client's one error type:
 * ABORTED when the caller's `signal` fired (even if it is a timeout signal of the caller's own),
 * TIMEOUT when the client's timeout did, else NETWORK_ERROR.
 */
export function transportError(err: unknown, timedOut: boolean, timeoutMs: number, signal?: AbortSignal): Tap2Error {
  if (err instanceof Tap2Error) return err;
  if (signal?.aborted) return abortedError(signal);
  if (timedOut || (err instanceof DOMException && err.name === "TimeoutError")) {
    return new Tap2Error({ status: 0, code: "TIMEOUT", message: timeoutMessage(timeoutMs / 1000), cause: err });
  }
  return new Tap2Error({ status: 0, code: "NETWORK_ERROR", message: networkErrorMessage(err), cause: err });
}

/** `No answer within 10 s` (seconds, up to 3 decimals): the Python and PHP clients say the same. */
export function timeoutMessage(seconds: number): string {
  return `No answer within ${Number(seconds.toFixed(3))} s`;
}

/**
 * The message of a NETWORK_ERROR, in the same words as the Python and PHP clients for the failures
 * all three can tell apart (Node's, Deno's and Bun's fetch name them in `cause.code`); else the
 * runtime's own text (a browser says only "Failed to fetch"). The original error is the `cause`.
 */
export function networkErrorMessage(err: unknown): string {
  const code = (err instanceof Error && typeof err.cause === "object" && err.cause !== null ? (err.cause as { code?: unknown }).code : undefined) ?? (err as { code?: unknown } | null)?.code;
  if (typeof code === "string") {
    if (["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL", "ConnectionRefused"].includes(code)) return "Request failed: could not connect to the server";
    if (["ENOTFOUND", "EAI_AGAIN", "EAI_NONAME", "EAI_FAIL"].includes(code)) return "Request failed: could not resolve the host name";
    if (["UND_ERR_SOCKET", "ECONNRESET", "EPIPE", "UND_ERR_CLOSED"].includes(code)) return "Request failed: the connection closed before the whole answer arrived";
    if (code.startsWith("HPE_")) return "Request failed: the answer is not valid HTTP";
  }
  return `Request failed: ${err instanceof Error ? err.message : String(err)}`;
}
