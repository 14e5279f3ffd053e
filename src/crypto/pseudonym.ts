import { setBounded } from "../storage/boundedMemo";
import { toBase64Url } from "./encoding";
import { hmacSha256 } from "./hash";

/** Memo per key: one isolate normally holds one PII_KEY, but the memo must never answer a ref of another key. */
const refsByKey = new Map<string, Map<string, string>>();
const MAX_MEMO = 10_000;
const MAX_KEYS = 4;

/**
 * The keyed pseudonym that stands for a customer id everywhere at rest (D1, KV keys, logs).
 * HMAC-SHA-256 under PII_KEY: stable, so rows join up, but not reversible without the key.
 * It does not depend on the merchant, so cross-merchant consent can join a customer's rows.
 */
export async function customerRef(piiKey: string, customerId: string): Promise<string> {
  let refs = refsByKey.get(piiKey);
  const hit = refs?.get(customerId);
  if (hit) return hit;
  const ref = "c_" + toBase64Url(await hmacSha256(piiKey, "customer:" + customerId));
  if (!refs) {
    refs = new Map();
    setBounded(refsByKey, piiKey, refs, MAX_KEYS);
  }
  setBounded(refs, customerId, ref, MAX_MEMO);
  return ref;
}
