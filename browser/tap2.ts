/**
 * Tap2 drop-in for checkout pages: asks for the method order with the merchant's publishable key
 * and a checkout session's client secret, then reorders the page's payment buttons in place.
 * A checkout never waits on us: on any failure or after `timeoutMs` the page stays as it was.
 * Built by scripts/build-browser.mjs into public/sdk/v1/tap2.js (one ES module, < 4 KB gzipped).
 */

export interface RankOptions {
  /** The merchant's publishable key, tp2_pk_… */
  publishableKey: string;
  /** The checkout session's client secret from the merchant's backend; without it: the guest order. */
  clientSecret?: string | null;
  /** Where the API lives, e.g. https://api.tap2-personalize.com (default: this page's origin). */
  baseUrl?: string;
  /** Give up after this many milliseconds (default 800). */
  timeoutMs?: number;
  /**
   * Explicit context; what is left out comes from the browser's request. With a clientSecret the
   * basket (amount, currency, and country when set) is the session's: repeat it or leave it out — a
   * different value is a 400 (the page is then left untouched).
   */
  context?: { device_type?: string; country?: string; amount?: number; currency?: string; timezone?: string };
}

export interface RankedMethod {
  method_id: string;
  confidence: number;
  score: number;
}

export interface RankResult {
  methods: RankedMethod[];
  personalized: boolean;
  fallback_reason?: string;
  /** Hand this to your backend: its feedback call attributes the payment to this answer. */
  decision_id: string;
}

/** Why `rank` failed: `code` is the API's error code, or TIMEOUT / NETWORK / BAD_RESPONSE / SECRET_KEY. */
export class Tap2Error extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 0,
  ) {
    super(message);
    this.name = "Tap2Error";
  }
}

const ATTR = "data-tap2-method";
const RECOMMENDED = "data-tap2-recommended";
const HIDDEN_BY_US = "data-tap2-hidden";

/**
 * setTimeout fires at once for a delay above 2^31 − 1 ms (Infinity, say, meant as "no timeout"):
 * such a delay waits that longest one instead; one that is no number waits the default.
 */
function timeoutOf(ms: number | undefined): number {
  if (typeof ms !== "number" || Number.isNaN(ms)) return 800;
  return Math.min(Math.max(ms, 0), 2 ** 31 - 1);
}

/** The ranked methods for this checkout; rejects with a Tap2Error on failure or timeout. */
export async function rank(options: RankOptions): Promise<RankResult> {
  // A secret key in a page is already public; sending it would also put it in every log on the way.
  if (String(options.publishableKey).startsWith("tp2_sk_")) {
    throw new Tap2Error("SECRET_KEY", "Tap2: a secret key (tp2_sk_…) was given as publishableKey; it was not sent. Never put a secret key in a page: revoke it, and use the merchant's publishable key (tp2_pk_…)");
  }
  const base = (options.baseUrl ?? location.origin).replace(/\/+$/, "");
  // The key goes in the query, not a header: a GET without custom headers needs no CORS preflight,
  // which saves a round trip on the checkout's critical path (the key is public anyway).
  const params = new URLSearchParams({ api_key: options.publishableKey });
  if (options.clientSecret) params.set("client_secret", options.clientSecret);
  for (const [k, v] of Object.entries(options.context ?? {})) if (v !== undefined && v !== null) params.set(k, String(v));

  const controller = new AbortController();
  const waitMs = timeoutOf(options.timeoutMs);
  const timer = setTimeout(() => controller.abort(), waitMs);
  try {
    // In seconds, up to 3 decimals (800 ms: "0.8 s"), the wording of the TypeScript, Python and PHP clients.
    const timedOut = () => new Tap2Error("TIMEOUT", `No answer within ${Number((waitMs / 1000).toFixed(3))} s`);
    let res: Response;
    try {
      res = await fetch(`${base}/v1/personalize/methods?${params}`, { signal: controller.signal, credentials: "omit" });
    } catch (err) {
      if (controller.signal.aborted) throw timedOut();
      throw new Tap2Error("NETWORK", String(err));
    }
    // An answer came; one that is not the API's JSON (an HTML error page of a proxy, a cut body) is
    // BAD_RESPONSE, never NETWORK, and an error without the API's error object too.
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      if (controller.signal.aborted) throw timedOut();
      throw new Tap2Error("BAD_RESPONSE", `HTTP ${res.status}: the answer is not JSON`, res.status);
    }
    if (!res.ok) {
      const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      if (typeof error?.code !== "string") throw new Tap2Error("BAD_RESPONSE", `HTTP ${res.status} without the API's error object`, res.status);
      throw new Tap2Error(error.code, typeof error.message === "string" ? error.message : res.statusText, res.status);
    }
    const result = body as RankResult;
    if (!Array.isArray(result?.methods) || typeof result.decision_id !== "string") throw new Tap2Error("BAD_RESPONSE", "Unexpected answer", res.status);
    return result;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Reorders, in place, the children of `container` that carry data-tap2-method="<method_id>": the
 * answer's order first, the methods it left out (unavailable or excluded) hidden; marks the first
 * method's (every button of it) with data-tap2-recommended. Other children keep their places. Without a usable answer (or when
 * it matches none of the buttons) nothing changes. Safe to call again with a newer answer.
 */
export function reorder(container: Element | null | undefined, result: RankResult | null | undefined): boolean {
  if (!container || !result || !Array.isArray(result.methods)) return false;
  const items = Array.from(container.children).filter((el) => el.hasAttribute(ATTR));
  // A method may have several buttons (a card in two layouts): they move together, in page order.
  const byId = new Map<string | null, Element[]>();
  for (const el of items) byId.set(el.getAttribute(ATTR), [...(byId.get(el.getAttribute(ATTR)) ?? []), el]);
  // A method named twice (a proxy's or a future answer) moves once, where it is first named.
  const named = [...new Set(result.methods.map((m) => m?.method_id))];
  const groups = named.map((id) => byId.get(id)).filter((g): g is Element[] => !!g);
  const ranked = groups.flat();
  if (ranked.length === 0) return false;
  const rest = items.filter((el) => !ranked.includes(el));

  // Each tagged child's place becomes a slot; slots are refilled in the new order.
  const slots = items.map((el) => {
    const slot = document.createComment("");
    container.insertBefore(slot, el);
    return slot;
  });
  [...ranked, ...rest].forEach((el, i) => slots[i]!.replaceWith(el));

  for (const el of items) {
    el.removeAttribute(RECOMMENDED);
    if (el.hasAttribute(HIDDEN_BY_US)) {
      el.removeAttribute(HIDDEN_BY_US);
      el.removeAttribute("hidden");
    }
  }
  for (const el of rest) {
    if (!el.hasAttribute("hidden")) {
      el.setAttribute("hidden", "");
      el.setAttribute(HIDDEN_BY_US, "");
    }
  }
  for (const el of groups[0]!) el.setAttribute(RECOMMENDED, "");
  return true;
}

/**
 * rank + reorder in one call that never rejects: the answer, or null when the page is as it was (no
 * answer, or none of its methods has a button here) — then its decision_id names an order nobody
 * saw, and feedback must not carry it.
 */
export async function personalize(container: Element | null | undefined, options: RankOptions): Promise<RankResult | null> {
  try {
    const result = await rank(options);
    return reorder(container, result) ? result : null;
  } catch (err) {
    // The one failure that is the page's own mistake, not ours: say so where its developer looks.
    if (err instanceof Tap2Error && err.code === "SECRET_KEY") console.error(err.message);
    return null;
  }
}

export const Tap2 = { rank, reorder, personalize };
export default Tap2;
