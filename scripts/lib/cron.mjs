// The cron schedules of wrangler.toml, for `npm run dev`: `wrangler dev` never triggers them by
// itself, so the dev script asks it to (GET /cdn-cgi/local/scheduled?cron=…) when one is due.
import { readFileSync } from "node:fs";

/** The `crons = [...]` of a wrangler.toml text. */
export function cronsOf(tomlText) {
  const line = tomlText.split("\n").find((l) => /^\s*crons\s*=/.test(l));
  return line ? [...line.matchAll(/"([^"]+)"/g)].map((m) => m[1]) : [];
}

export function readCrons(path) {
  return cronsOf(readFileSync(path, "utf8"));
}

/** One field of a 5-field cron expression: `*`, `*\/n`, `n`, `a-b` and comma lists of those. */
function fieldMatches(field, value) {
  return field.split(",").some((part) => {
    const [range, stepText] = part.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    if (range === "*") return value % step === 0;
    const [lo, hi] = range.includes("-") ? range.split("-").map(Number) : [Number(range), stepText === undefined ? Number(range) : Infinity];
    return value >= lo && value <= hi && (value - lo) % step === 0;
  });
}

/** Whether `cron` is due in the UTC minute of `date` (minute hour day-of-month month day-of-week). */
export function cronDue(cron, date) {
  const [minute, hour, dom, month, dow] = cron.trim().split(/\s+/);
  return (
    fieldMatches(minute, date.getUTCMinutes()) &&
    fieldMatches(hour, date.getUTCHours()) &&
    fieldMatches(dom, date.getUTCDate()) &&
    fieldMatches(month, date.getUTCMonth() + 1) &&
    fieldMatches(dow, date.getUTCDay())
  );
}
