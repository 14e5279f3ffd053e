/**
 * The five facts of the analytics report, each defined ONCE as an aggregate over raw rows in a time
 * window. The same SELECT fills the hourly rollups (src/analytics/rollups.ts) and answers the open
 * hour at read time (src/analytics/load.ts), so rollups and raw rows can never disagree on a rule.
 *
 * An aggregate is built for a merchant scope: `oneMerchant` (?1 is the merchant_id; the read path) or
 * `dirtyMerchants` (?1 is an hour: every merchant with a dirty mark on it; the rollup job rebuilds an
 * hour for all of them in one statement). ?2 and ?3 bind the window as hour prefixes
 * ('2026-02-03T15' <= ts < '2026-02-03T16'). It yields `merchant_id`, `bucket` (the hour), dims and measures.
 */

/** The SQL condition that puts `column` (a merchant_id column) in scope. */
export type MerchantScope = (column: string) => string;
export const oneMerchant: MerchantScope = (column) => `${column} = ?1`;
export const dirtyMerchants: MerchantScope = (column) => `${column} IN (SELECT merchant_id FROM analytics_dirty_hours WHERE hour = ?1)`;

export interface Fact {
  name: FactName;
  table: string;
  dims: readonly string[];
  measures: readonly string[];
  aggregate: (scope: MerchantScope) => string;
}

export type FactName = "decisions" | "conversions" | "ttp" | "payments" | "offers";

const HOUR = (col: string) => `substr(${col}, 1, 13) || ':00:00Z'`;
const COUNT_IF = (cond: string) => `sum(CASE WHEN ${cond} THEN 1 ELSE 0 END)`;

/** How long after an offer is shown a payment with its offer_id redeems it: the longest checkout session (86,400 s). The triggers of migration 0022 use the same window. */
const REDEMPTION_WINDOW = "+1 day";
/**
 * How far the merchant's clock may run behind ours. `shown_at` is our clock (when /offers
 * answered), a payment's `occurred_at` the merchant's (or receipt time), so a merchant a few
 * seconds behind would lose every redemption paid within that lag. A payment counts as if it may
 * have happened up to this much later: the same 5 minutes the API lets `occurred_at` run ahead
 * (MAX_FUTURE_MS, src/schemas/feedback.ts). The triggers of migration 0022 use the same bound.
 */
export const REDEMPTION_SKEW_MINUTES = 5;
/** A stored timestamp (toISOString form, so text order is time order) moved by an SQLite modifier. */
const shifted = (col: string, modifier: string) => `strftime('%Y-%m-%dT%H:%M:%fZ', ${col}, '${modifier}')`;

/**
 * Impression i (of offer_id to customer_ref at shown_at) is redeemed when a stored payment u of the
 * same merchant, customer and offer_id occurred in [shown_at − 5 min, shown_at + 1 day) and i is the
 * LATEST impression of that offer to that customer at or before u's occurred_at + 5 min (the skew
 * bound above; ties of shown_at: the greater impression_id), so a payment redeems at most one
 * impression, and one impression counts once however many payments name it. An impression without
 * customer_ref (a guest; or stored after the customer's purge) cannot be matched. The triggers of
 * migration 0022 mark the hours whose answer a new payment or impression changes.
 */
const REDEEMED_IMPRESSION = `i.customer_ref IS NOT NULL AND EXISTS (
          SELECT 1 FROM usage_events AS u
          WHERE u.merchant_id = i.merchant_id AND u.customer_ref = i.customer_ref AND u.offer_id = i.offer_id
            AND u.occurred_at >= ${shifted("i.shown_at", `-${REDEMPTION_SKEW_MINUTES} minutes`)} AND u.occurred_at < ${shifted("i.shown_at", REDEMPTION_WINDOW)}
            AND NOT EXISTS (
              SELECT 1 FROM analytics_offer_impressions AS j
              WHERE j.merchant_id = i.merchant_id AND j.customer_ref = i.customer_ref AND j.offer_id = i.offer_id
                AND j.shown_at <= ${shifted("u.occurred_at", `+${REDEMPTION_SKEW_MINUTES} minutes`)}
                AND (j.shown_at > i.shown_at OR (j.shown_at = i.shown_at AND j.impression_id > i.impression_id))))`;

export const FACTS: Record<FactName, Fact> = {
  decisions: {
    name: "decisions",
    table: "analytics_decision_rollups",
    dims: ["arm", "fallback_reason", "device_type", "country", "currency"],
    // holdout_ppm_sum / holdout_known: the holdout_percent each decision was assigned with, summed
    // in millionths of the share (integers: rollups and raw rows sum exactly alike), and how many
    // decisions recorded one (migration 0011); the SRM's expected share is their weighted mean.
    measures: ["decisions", "personalized", "cache_hits", "cache_misses", "holdout_ppm_sum", "holdout_known"],
    aggregate: (scope) => `
      SELECT merchant_id, ${HOUR("decided_at")} AS bucket, coalesce(arm, '') AS arm, coalesce(fallback_reason, '') AS fallback_reason,
        coalesce(device_type, '') AS device_type, coalesce(country, '') AS country, coalesce(currency, '') AS currency,
        count(*) AS decisions, sum(personalized) AS personalized,
        ${COUNT_IF("cache = 'hit'")} AS cache_hits, ${COUNT_IF("cache = 'miss'")} AS cache_misses,
        coalesce(sum(CAST(round(holdout_percent * 10000) AS INTEGER)), 0) AS holdout_ppm_sum, count(holdout_percent) AS holdout_known
      FROM analytics_decisions
      WHERE ${scope("merchant_id")} AND decided_at >= ?2 AND decided_at < ?3
      GROUP BY 1, 2, 3, 4, 5, 6, 7`,
  },
  // Conversions belong to the hour of their decision: a conversion rate compares like with like.
  // amount_sum is total(), not sum(): amounts go up to 10^12, so 9.2 million of them (an hour of a
  // merchant at the highest rate_limit) pass 2^63, where SQLite's integer sum() raises "integer
  // overflow" and fails the rollup batch of every merchant of that day. total() adds in floating
  // point: exact while the sum stays below 2^53 (what a JS number holds exactly anyway), a rounded
  // float beyond, never an error.
  conversions: {
    name: "conversions",
    table: "analytics_conversion_rollups",
    dims: ["arm", "currency", "rank"],
    measures: ["conversions", "amount_n", "amount_sum"],
    aggregate: (scope) => `
      SELECT merchant_id, ${HOUR("decided_at")} AS bucket, coalesce(arm, '') AS arm, coalesce(currency, '') AS currency, rank,
        count(*) AS conversions,
        ${COUNT_IF("amount IS NOT NULL AND currency IS NOT NULL")} AS amount_n,
        total(CASE WHEN currency IS NOT NULL THEN amount END) AS amount_sum
      FROM analytics_conversions
      WHERE ${scope("merchant_id")} AND decided_at >= ?2 AND decided_at < ?3
      GROUP BY 1, 2, 3, 4, 5`,
  },
  ttp: {
    name: "ttp",
    table: "analytics_ttp_rollups",
    dims: ["arm", "bin"],
    measures: ["n"],
    aggregate: (scope) => `
      SELECT merchant_id, ${HOUR("decided_at")} AS bucket, coalesce(arm, '') AS arm, ttp_bin AS bin, count(*) AS n
      FROM analytics_conversions
      WHERE ${scope("merchant_id")} AND decided_at >= ?2 AND decided_at < ?3
      GROUP BY 1, 2, 3, 4`,
  },
  // Every stored payment, attributed or not, by the hour it occurred; arm of the decision it converted.
  payments: {
    name: "payments",
    table: "analytics_payment_rollups",
    dims: ["method_id", "arm"],
    measures: ["payments"],
    aggregate: (scope) => `
      SELECT u.merchant_id AS merchant_id, ${HOUR("u.occurred_at")} AS bucket, u.method_id AS method_id, coalesce(c.arm, '') AS arm, count(*) AS payments
      FROM usage_events AS u
      LEFT JOIN analytics_conversions AS c INDEXED BY idx_analytics_conversions_event ON c.merchant_id = u.merchant_id AND c.event_id = u.event_id
      WHERE ${scope("u.merchant_id")} AND u.occurred_at >= ?2 AND u.occurred_at < ?3
      GROUP BY 1, 2, 3, 4`,
  },
  // Offers by the hour they were SHOWN: `shown` counts impressions (offer × /offers answer),
  // `redeemed` those of them a payment redeemed (REDEEMED_IMPRESSION), so redeemed <= shown in every
  // bucket and every window. A payment's offer_id is stored as sent and never checked; one that no
  // impression matches (junk, a removed offer, a guest's answer) counts as a payment only.
  offers: {
    name: "offers",
    table: "analytics_offer_rollups",
    dims: ["offer_id"],
    measures: ["shown", "redeemed"],
    aggregate: (scope) => `
      SELECT i.merchant_id AS merchant_id, ${HOUR("i.shown_at")} AS bucket, i.offer_id AS offer_id,
        count(*) AS shown, ${COUNT_IF(REDEEMED_IMPRESSION)} AS redeemed
      FROM analytics_offer_impressions AS i
      WHERE ${scope("i.merchant_id")} AND i.shown_at >= ?2 AND i.shown_at < ?3
      GROUP BY 1, 2, 3`,
  },
};

export const FACT_LIST = Object.values(FACTS);

/** A fact row: its bucket, dims and measures by column name. */
export type FactRow = Record<string, string | number> & { bucket: string };
