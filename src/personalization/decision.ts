import { fromBase64Url, toBase64Url, utf8 } from "../crypto/encoding";
import { hmacSha256 } from "../crypto/hash";
import { NONCE_BYTES, packClaims, unpackClaims } from "./decisionPayload";
import type { FallbackReason } from "./ranking";

/**
 * A decision id is a signed, compact token: feedback can be attributed to the answer it came from
 * (arm, the rank given to each method, time) without a D1 write per /methods call, and a forged or
 * another merchant's id is recognised. It holds no customer identifier (not even the pseudonym,
 * which is the same at every merchant and would let merchants correlate customers).
 */
export type Arm = "treatment" | "holdout";

export interface DecisionClaims {
  /** Merchant the decision was issued to. */
  m: string;
  /** Experiment arm, null for customers outside the experiment (opted out, deleted, guests). */
  a: Arm | null;
  /** Fallback reason, null when personalized. */
  f: FallbackReason | null;
  /** Method ids in the order answered (rank = index + 1). */
  r: string[];
  /** Issued at, epoch ms. */
  t: number;
  /**
   * Tag of the customer the answer was for (customerTag); absent for guests and for a customer who
   * could not be identified. Feedback for another customer cannot claim the decision.
   */
  c?: string;
}

const PREFIX = "dec_";
const SIG_BYTES = 16; // 128-bit truncated HMAC-SHA-256; the signature text is the decision's key (analytics/store.ts)
// Every id ever issued is at most this long; anything longer is refused before any HMAC work.
const MAX_TOKEN = 4096;
// The first format's payload is JSON; a packed one starts with its version byte instead.
const JSON_START = utf8("{")[0];

/**
 * A short, per-merchant tag of a customer pseudonym under the signing key: the same customer at two
 * merchants gets unrelated tags, so decision ids cannot be used to link customers across merchants.
 */
export async function customerTag(key: string, merchantId: string, customerRef: string): Promise<string> {
  return toBase64Url((await hmacSha256(key, `decision-customer:${merchantId}:${customerRef}`)).slice(0, 9));
}

/**
 * What a packed payload's signature covers: the merchant is signed, not carried (the verifier knows
 * it), so another merchant's id fails the signature. "\n" never occurs in a merchant id or base64url,
 * and the first format's "decision:" prefix keeps the two formats' messages apart.
 */
const packedMessage = (merchantId: string, payload: string) => `decision-v1\n${merchantId}\n${payload}`;
const jsonMessage = (payload: string) => "decision:" + payload;

const signature = async (key: string, message: string) => (await hmacSha256(key, message)).slice(0, SIG_BYTES);

/** A new decision id: `dec_<packed payload>.<signature>`, both unpadded base64url. */
export async function signDecision(key: string, claims: DecisionClaims): Promise<string> {
  const payload = toBase64Url(packClaims(claims, crypto.getRandomValues(new Uint8Array(NONCE_BYTES))));
  return `${PREFIX}${payload}.${toBase64Url(await signature(key, packedMessage(claims.m, payload)))}`;
}

/**
 * The claims of a genuine decision id issued to `merchantId`; null for anything else. Ids of the
 * first format (a JSON payload) are still read: decisions stay attributable for 90 days.
 */
export async function verifyDecision(key: string, token: string, merchantId: string): Promise<DecisionClaims | null> {
  if (!token.startsWith(PREFIX) || token.length > MAX_TOKEN) return null;
  const [payload, sigText, extra] = token.slice(PREFIX.length).split(".");
  if (!payload || !sigText || extra !== undefined) return null;
  const sig = fromBase64Url(sigText);
  const bytes = fromBase64Url(payload);
  if (!sig || sig.length !== SIG_BYTES || !bytes) return null;
  const json = bytes[0] === JSON_START;
  const expected = await signature(key, json ? jsonMessage(payload) : packedMessage(merchantId, payload));
  if (!crypto.subtle.timingSafeEqual(expected, sig)) return null;
  return json ? jsonClaims(bytes, merchantId) : unpackClaims(bytes, merchantId);
}

/** The first format's payload: the claims as JSON, the merchant among them. */
function jsonClaims(bytes: Uint8Array, merchantId: string): DecisionClaims | null {
  try {
    const { m, a, f, r, t, n, c } = JSON.parse(new TextDecoder().decode(bytes)) as DecisionClaims & { n: unknown };
    if (m !== merchantId || !Array.isArray(r) || typeof t !== "number" || typeof n !== "string") return null;
    return { m, a, f, r, t, ...(c === undefined ? {} : { c }) };
  } catch {
    return null;
  }
}
