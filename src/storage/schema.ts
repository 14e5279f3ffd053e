/**
 * The newest migration this code needs (migrations/). test/api/health.test.ts holds it to the last
 * file there, so adding a migration without moving it fails the suite.
 */
export const LATEST_MIGRATION = "0022_redemption_clock_skew.sql";

/**
 * Whether D1 has had every migration this code needs: wrangler records them in d1_migrations (the
 * deploy scripts apply them before the code goes out). A newer one (code rolled back) is fine;
 * names are zero-padded, so they order as text. An unmigrated database throws (no such table).
 */
export async function schemaIsCurrent(db: D1Database): Promise<boolean> {
  const latest = await db.prepare("SELECT max(name) AS name FROM d1_migrations").first<string | null>("name");
  return latest !== null && latest >= LATEST_MIGRATION;
}
