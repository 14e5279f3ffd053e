/**
 * The design document's rules-based formula, taken literally:
 *   score = (default_method ? 100 : 0) + usage_count × 10 + contextBoost
 * The document leaves calculateContextBoost and calculateConfidence open; we read them generously:
 * +5 for a wallet on mobile/tablet, a BNPL method on a basket of 100+ (major units) and a local
 * method in its country; confidence = score share (each score + 1, so unused methods keep a little).
 */
import { CATALOG_BY_ID } from "../../src/catalog/methods";
import type { ScoringContext } from "../../src/personalization/scoring";

export function literalScores(candidates: readonly string[], uses: ReadonlyMap<string, number>, defaultMethod: string | null, ctx: ScoringContext & { amount: number | null }): number[] {
  return candidates.map((id) => {
    const kind = CATALOG_BY_ID.get(id)?.kind;
    let boost = 0;
    if (kind === "wallet" && ctx.device_type && ctx.device_type !== "desktop") boost += 5;
    if (kind === "bnpl" && (ctx.amount ?? 0) >= 10_000) boost += 5;
    if ((kind === "local" || kind === "bank_transfer") && ctx.country) boost += 5; // availability already means "in its country"
    return (defaultMethod === id ? 100 : 0) + (uses.get(id) ?? 0) * 10 + boost;
  });
}

export function literalProbabilities(scores: readonly number[]): number[] {
  const shifted = scores.map((s) => Math.max(0, s) + 1);
  const total = shifted.reduce((a, b) => a + b, 0);
  return shifted.map((s) => s / total);
}
