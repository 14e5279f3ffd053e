/**
 * How a synthetic customer reacts to the order a checkout shows: the position effect that makes
 * personalization's lift measurable. The customer arrives intending to pay with their habitual
 * method for this context; the further down the list it is, the likelier they give up, or settle
 * for whatever is shown first. Pure and seeded.
 */
import type { Rng } from "../eval/random";

export const BEHAVIOUR = {
  /** Abandonment when the habitual method is shown first (checkouts are abandoned for other reasons too). */
  abandonAtTop: 0.04,
  /** Added abandonment per position the habitual method is further down … */
  abandonPerPosition: 0.05,
  /** … up to this. */
  abandonMax: 0.45,
  /** Among those who pay: chance per position down that they pay with the first method shown instead … */
  topPerPosition: 0.1,
  /** … up to this. */
  topMax: 0.5,
  /** Habitual method not in the list at all (unavailable, or not enabled): abandon with this chance, else pay with the first method. */
  abandonWhenMissing: 0.5,
} as const;

export type Outcome = { paid: false; position: number } | { paid: true; method_id: string; position: number; habitual: boolean };

/** `position` is the 1-based rank of the habitual method in `shown` (0 when absent). */
export function react(rng: Rng, habitual: string, shown: readonly string[], b = BEHAVIOUR): Outcome {
  const position = shown.indexOf(habitual) + 1;
  const top = shown[0];
  if (top === undefined) return { paid: false, position };
  if (position === 0) {
    return rng.chance(b.abandonWhenMissing) ? { paid: false, position } : { paid: true, method_id: top, position, habitual: false };
  }
  const down = position - 1;
  if (rng.chance(Math.min(b.abandonMax, b.abandonAtTop + b.abandonPerPosition * down))) return { paid: false, position };
  if (down > 0 && rng.chance(Math.min(b.topMax, b.topPerPosition * down))) return { paid: true, method_id: top, position, habitual: false };
  return { paid: true, method_id: habitual, position, habitual: true };
}
