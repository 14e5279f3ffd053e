import type { Arm } from "./decision";

/**
 * Experiment assignment by a deterministic hash of (merchant, customer): the same customer lands
 * in the same arm on every request and in every isolate, with no stored assignment. FNV-1a 32-bit
 * is enough here: the input is already a keyed HMAC pseudonym, so it cannot be steered.
 */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A position in [0, 100) with 0.01 resolution, uniform over customers. */
export function holdoutPosition(merchantId: string, customerRef: string): number {
  return (fnv1a32(`${merchantId}\u0000${customerRef}`) % 10_000) / 100;
}

export function assignArm(merchantId: string, customerRef: string, holdoutPercent: number): Arm {
  return holdoutPosition(merchantId, customerRef) < holdoutPercent ? "holdout" : "treatment";
}
