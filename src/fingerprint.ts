/**
 * A request's content in one text form, for ids derived from an Idempotency-Key (feedback batches,
 * checkout sessions): its fields in name order, those left out (undefined) dropped, and merchant_id
 * dropped too (given or not, it is the key's merchant). Callers normalise what has several spellings
 * (a timestamp) first.
 */
export function contentFingerprint(fields: Record<string, unknown>): string {
  return JSON.stringify(
    Object.keys(fields)
      .sort()
      .filter((k) => k !== "merchant_id" && fields[k] !== undefined)
      .map((k) => [k, fields[k]]),
  );
}
