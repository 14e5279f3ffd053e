import { candidateMethods } from "./candidates";
import type { ResolvedContext } from "./context";
import type { Arm } from "./decision";
import { assignArm } from "./holdout";
import { contextPrior, type PopularityRow } from "./prior";
import { defaultOrder, type CrossUsage, type RankedMethod, scoreMethods, type UsageStat } from "./scoring";
import { resolveWeights } from "./weights";

export type FallbackReason = "customer_deleted" | "personalization_disabled" | "holdout" | "no_history" | "degraded" | "guest";

export interface RankingMerchant {
  merchant_id: string;
  methods: readonly string[];
  holdout_percent: number;
  scoring_weights: Readonly<Record<string, number>>;
}

/** The parts of a stored profile ranking reads (storage/profile.ts Profile fits). */
export interface RankingProfile {
  preferences: {
    default_method: string | null;
    favorite_methods: readonly string[];
    excluded_methods: readonly string[];
    personalization_enabled: boolean;
  } | null;
  stats: readonly UsageStat[];
  cross_merchant: readonly CrossUsage[];
  pending_deletion: boolean;
}

export interface RankingResult {
  methods: RankedMethod[];
  personalized: boolean;
  fallback_reason: FallbackReason | null;
  /** Experiment arm; null for customers outside the experiment (opted out, deleted). */
  arm: Arm | null;
  /** Method probabilities by id (all candidates), for offers' expected value. */
  probabilities: Map<string, number>;
}

/** §2's precedence: customer_deleted > personalization_disabled > holdout > no_history. */
export function fallbackReason(profile: RankingProfile, arm: Arm, candidates: readonly string[]): FallbackReason | null {
  if (profile.pending_deletion) return "customer_deleted";
  if (profile.preferences && !profile.preferences.personalization_enabled) return "personalization_disabled";
  if (arm === "holdout") return "holdout";
  return hasSignal(profile, candidates) ? null : "no_history";
}

/**
 * A payment here or (consented) elsewhere, or a stated default or favourite, with a method this
 * answer can show: a default the merchant no longer offers, or payments only with methods
 * unavailable here (iDEAL, for a customer now checking out in the US), cannot shape the order, so
 * the answer is the default order and says `no_history` rather than claiming to be personal.
 */
export function hasSignal(profile: RankingProfile, candidates: readonly string[]): boolean {
  const shown = new Set(candidates);
  const prefs = profile.preferences;
  return (
    profile.stats.some((s) => shown.has(s.method_id)) ||
    profile.cross_merchant.some((c) => shown.has(c.method_id)) ||
    (!!prefs?.default_method && shown.has(prefs.default_method)) ||
    (prefs?.favorite_methods.some((m) => shown.has(m)) ?? false)
  );
}

/**
 * One answer of /methods (and the probabilities /offers ranks by). `profile` null means it could
 * not be read (D1/KV failure): the merchant's default order for the context, `degraded`.
 * `customerRef` null is a guest (a browser without a checkout session, API.md §7): the default
 * order for the context, outside the experiment — or, with `unverified`, a customer who could not be
 * identified because the session store failed: the same order, `degraded`.
 */
export function rankForCustomer(input: {
  merchant: RankingMerchant;
  customerRef: string | null;
  profile: RankingProfile | null;
  popularity: readonly PopularityRow[];
  context: ResolvedContext;
  nowMs: number;
  /** The customer could not be identified (a checkout session that could not be read): `degraded`. */
  unverified?: boolean;
}): RankingResult {
  const { merchant, profile, context, nowMs } = input;
  const weights = resolveWeights(merchant.scoring_weights);
  const arm = input.customerRef === null ? null : assignArm(merchant.merchant_id, input.customerRef, merchant.holdout_percent);
  // A deleted customer's data is no longer used, exclusions included.
  const excluded = profile && !profile.pending_deletion ? (profile.preferences?.excluded_methods ?? []) : [];
  const candidates = candidateMethods(merchant.methods, context, excluded);
  const reason = input.unverified ? "degraded" : arm === null ? "guest" : profile ? fallbackReason(profile, arm, candidates) : "degraded";
  const population = contextPrior(candidates, input.popularity, context, weights, nowMs);
  const eligible = arm !== null && reason !== "customer_deleted" && reason !== "personalization_disabled";
  const methods =
    reason === null
      ? scoreMethods({
          candidates,
          prior: population.base,
          segments: population.segments,
          stats: profile!.stats,
          cross: profile!.cross_merchant,
          preferences: profile!.preferences,
          context,
          weights,
          nowMs,
        })
      : defaultOrder(candidates, population.prior);
  return {
    methods,
    personalized: reason === null,
    fallback_reason: reason,
    arm: eligible ? arm : null,
    probabilities: new Map(methods.map((m) => [m.method_id, m.confidence])),
  };
}
