import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import MINOR_UNITS from "../../src/catalog/minor-units.json";
import { amountBand } from "../../src/personalization/buckets";

/**
 * Migration 0019: events stored while amount bands read every currency but ten as hundredths move
 * to the band amountBand() gives them now, and the aggregates they fed move with them.
 */
const migration = env.TEST_MIGRATIONS.find((m) => m.name.startsWith("0019_"))!;
const runMigration = () => env.DB.batch(migration.queries.map((q) => env.DB.prepare(q)));

/** amountBand before c35d522: ten zero-decimal currencies, every other one in hundredths. */
const OLD_ZERO_DECIMAL = new Set(["JPY", "KRW", "VND", "CLP", "ISK", "HUF", "TWD", "UGX", "XAF", "XOF"]);
function oldBand(amount: number, currency: string): number {
  const normalized = OLD_ZERO_DECIMAL.has(currency) ? amount * 100 : amount;
  const band = [2_000, 10_000, 50_000].findIndex((upper) => normalized < upper);
  return band === -1 ? 3 : band;
}

const CURRENCIES = [...Object.keys(MINOR_UNITS).filter((c) => /^[A-Z]{3}$/.test(c)), "HUF", "TWD", "USD", "EUR", "JPY"];
const AMOUNTS = [0, 1, 19, 20, 99, 100, 499, 500, 1_999, 2_000, 9_999, 10_000, 49_999, 50_000, 199_999, 200_000, 4_999_999, 5_000_000];

type Event = { customer: string; method: string; amount: number; currency: string; country: string | null; at: string };
let seq = 0;
async function insert(merchant: string, events: Event[], band: (amount: number, currency: string) => number) {
  await env.DB.batch(events.map((e) =>
    env.DB.prepare(
      `INSERT INTO usage_events (merchant_id, event_id, customer_ref, method_id, amount, currency, device_type,
         location_country, amount_band, recency_ref, occurred_at, received_at)
       VALUES (?, ?, ?, ?, ?, ?, 'mobile', ?, ?, 1.5, ?, ?)`,
    ).bind(merchant, `e${++seq}`, e.customer, e.method, e.amount, e.currency, e.country, band(e.amount, e.currency), e.at, e.at),
  ));
}

const stats = async (merchant: string) =>
  (await env.DB.prepare("SELECT customer_ref, bucket, method_id, round(weight_ref, 9) AS w, uses, last_used_at FROM method_stats WHERE merchant_id = ? ORDER BY 1, 2, 3")
    .bind(merchant).all()).results;
const popularity = async (merchant: string) =>
  (await env.DB.prepare("SELECT segment, method_id, round(weight_ref, 9) AS w, uses FROM method_popularity WHERE merchant_id = ? ORDER BY 1, 2")
    .bind(merchant).all()).results;

describe("migration 0019: amount bands follow ISO 4217 decimals for events stored before", () => {
  it("every stored band becomes amountBand()'s, for every currency of the table and the unchanged ones", async () => {
    const events: Event[] = CURRENCIES.flatMap((currency) =>
      AMOUNTS.map((amount) => ({ customer: "c_all", method: "visa", amount, currency, country: "KW", at: "2026-11-01T00:00:00.000Z" })));
    await insert("m_reband_all", events, oldBand);
    await runMigration();
    const rows = (await env.DB.prepare("SELECT amount, currency, amount_band FROM usage_events WHERE merchant_id = 'm_reband_all'")
      .all<{ amount: number; currency: string; amount_band: number }>()).results;
    expect(rows).toHaveLength(events.length);
    const wrong = rows.filter((r) => r.amount_band !== amountBand(r.amount, r.currency));
    expect(wrong).toEqual([]);
    // The fixture does exercise moves: the old and the new band differ for many of these events.
    expect(events.filter((e) => oldBand(e.amount, e.currency) !== amountBand(e.amount, e.currency)).length).toBeGreaterThan(50);
  });

  it("the aggregates end as if the events had been stored with today's bands, and a second run changes nothing", async () => {
    const events: Event[] = [
      { customer: "c1", method: "visa", amount: 15_000, currency: "KWD", country: "KW", at: "2026-10-01T00:00:00.000Z" }, // 15 KWD: band 0, was 2
      { customer: "c1", method: "visa", amount: 15_000, currency: "KWD", country: "KW", at: "2026-10-03T00:00:00.000Z" },
      { customer: "c1", method: "visa", amount: 1_500, currency: "USD", country: "KW", at: "2026-10-05T00:00:00.000Z" }, // band 0 all along
      { customer: "c1", method: "knet", amount: 600_000, currency: "KWD", country: "KW", at: "2026-10-02T00:00:00.000Z" }, // 600 KWD: band 3 all along
      { customer: "c1", method: "klarna", amount: 300_000, currency: "KWD", country: null, at: "2026-10-04T00:00:00.000Z" }, // 300 KWD: band 2, was 3
      { customer: "c2", method: "visa", amount: 150_000, currency: "PYG", country: "PY", at: "2026-10-06T00:00:00.000Z" }, // band 3, was 3
      { customer: "c2", method: "visa", amount: 150, currency: "PYG", country: "PY", at: "2026-10-07T00:00:00.000Z" }, // band 1, was 0
      { customer: "c2", method: "visa", amount: 4_000, currency: "HUF", country: "HU", at: "2026-10-08T00:00:00.000Z" }, // 40 HUF: band 1, was 3
      { customer: "c3", method: "visa", amount: 123_456, currency: "CLF", country: "CL", at: "2026-10-09T00:00:00.000Z" }, // 12.3456 CLF: band 0, was 3
    ];
    await insert("m_reband_old", events, oldBand);
    await insert("m_reband_new", events, (amount, currency) => amountBand(amount, currency)!);
    expect(await stats("m_reband_old")).not.toEqual(await stats("m_reband_new"));

    await runMigration();
    expect(await stats("m_reband_old")).toEqual(await stats("m_reband_new"));
    expect(await popularity("m_reband_old")).toEqual(await popularity("m_reband_new"));
    // No emptied row stays behind.
    const empty = await env.DB.prepare("SELECT count(*) AS n FROM method_stats WHERE uses <= 0 UNION ALL SELECT count(*) FROM method_popularity WHERE uses <= 0").all<{ n: number }>();
    expect(empty.results.map((r) => r.n)).toEqual([0, 0]);

    const before = [await stats("m_reband_old"), await popularity("m_reband_old")];
    await runMigration();
    expect([await stats("m_reband_old"), await popularity("m_reband_old")]).toEqual(before);
  });

  it("a band fed also by events retention has deleted keeps their part and its last use", async () => {
    const kept: Event = { customer: "c1", method: "visa", amount: 15_000, currency: "KWD", country: "KW", at: "2026-10-01T00:00:00.000Z" };
    const gone: Event = { customer: "c1", method: "visa", amount: 20_000, currency: "USD", country: "KW", at: "2026-10-09T00:00:00.000Z" }; // band 2 too
    await insert("m_reband_gone", [kept, gone], oldBand);
    await env.DB.prepare("DELETE FROM usage_events WHERE merchant_id = 'm_reband_gone' AND currency = 'USD'").run();
    await runMigration();
    const rows = await stats("m_reband_gone");
    expect(rows.filter((r) => String(r.bucket).startsWith("amount:"))).toEqual([
      { customer_ref: "c1", bucket: "amount:0", method_id: "visa", w: 1.5, uses: 1, last_used_at: kept.at },
      { customer_ref: "c1", bucket: "amount:2", method_id: "visa", w: 1.5, uses: 1, last_used_at: gone.at },
    ]);
  });
});
