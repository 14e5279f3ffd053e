import { setBounded } from "../storage/boundedMemo";
import { toBase64Url } from "./encoding";
import { hmacSha256 } from "./hash";

const refs = new Map<string, string>();
const MAX_MEMO = 10_000;

/**
 * The keyed pseudonym that stands for a customer id everywhere at rest (D1, KV keys, logs).
 * HMAC-SHA-256 under PII_KEY: stable, so rows join up, but not reversible without the key.
 * It does not depend on the merchant, so cross-merchant consent can join a customer's rows.
 */
export async function customerRef(piiKey: string, customerId: string): Promise<string> {
  const memoKey = `${piiKey.length}:${piiKey.slice(0, 8)}:${customerId}`;
  const hit = refs.get(memoKey);
  if (hit) return hit;
  const ref = "c_" + toBase64Url(await hmacSha256(piiKey, "customer:" + customerId));
  setBounded(refs, memoKey, ref, MAX_MEMO);
  return ref;
}
