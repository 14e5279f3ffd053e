import { fromBase64Url, toBase64Url, utf8 } from "../crypto/encoding";
import { hmacSha256 } from "../crypto/hash";

/**
 * A decision id is a signed, compact token: feedback can be attributed to the answer it came from
 * (arm, the rank given to each method, time) without a D1 write per /methods call, and a forged or
 * another merchant's id is recognised. It holds no customer identifier (not even the pseudonym,
 * which is the same at every merchant and would let merchants correlate customers).
 */
export type Arm = "treatment" | "holdout";

export interface DecisionClaims {
  /** Random nonce: makes every decision id unique. */
  n: string;
  /** Merchant the decision was issued to. */
  m: string;
  /** Experiment arm, null for customers outside the experiment (opted out, deleted, guests). */
  a: Arm | null;
  /** Fallback reason, null when personalized. */
  f: string | null;
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
const SIG_BYTES = 16; // 128-bit truncated HMAC-SHA-256

/**
 * A short, per-merchant tag of a customer pseudonym under the signing key: the same customer at two
 * merchants gets unrelated tags, so decision ids cannot be used to link customers across merchants.
 */
export async function customerTag(key: string, merchantId: string, customerRef: string): Promise<string> {
  return toBase64Url((await hmacSha256(key, `decision-customer:${merchantId}:${customerRef}`)).slice(0, 9));
}

export async function signDecision(key: string, claims: DecisionClaims): Promise<string> {
  const payload = toBase64Url(utf8(JSON.stringify(claims)));
  const sig = (await hmacSha256(key, "decision:" + payload)).slice(0, SIG_BYTES);
  return `${PREFIX}${payload}.${toBase64Url(sig)}`;
}

/** The claims of a genuine decision id issued to `merchantId`; null for anything else. */
export async function verifyDecision(key: string, token: string, merchantId: string): Promise<DecisionClaims | null> {
  if (!token.startsWith(PREFIX) || token.length > 4096) return null;
  const [payload, sigText, extra] = token.slice(PREFIX.length).split(".");
  if (!payload || !sigText || extra !== undefined) return null;
  const sig = fromBase64Url(sigText);
  if (!sig || sig.length !== SIG_BYTES) return null;
  const expected = (await hmacSha256(key, "decision:" + payload)).slice(0, SIG_BYTES);
  if (!crypto.subtle.timingSafeEqual(expected, sig)) return null;
  const bytes = fromBase64Url(payload);
  if (!bytes) return null;
  try {
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as DecisionClaims;
    if (claims.m !== merchantId || !Array.isArray(claims.r) || typeof claims.t !== "number" || typeof claims.n !== "string") return null;
    return claims;
  } catch {
    return null;
  }
}
