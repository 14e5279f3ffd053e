/**
 * Remote D1's per-query limits that local D1 (workerd's SQLite under Miniflare) does not enforce,
 * as https://developers.cloudflare.com/d1/platform/limits/ states them. test/helpers/setup.ts holds
 * every statement of every test to the per-query ones (test/api/d1Limits.test.ts shows each one
 * fails), test/api/migrations.test.ts the schema to the columns per table.
 */
export const D1_LIMITS = {
  /** "Maximum SQL statement length: 100,000 bytes (100 KB)": bytes of UTF-8, not characters. */
  sqlBytes: 100_000,
  /** "Maximum bound parameters per query: 100". */
  boundParameters: 100,
  /** "Maximum arguments per SQL function: 32" (local SQLite takes far more). */
  functionArgs: 32,
  /** "Maximum string, BLOB or table row size: 2,000,000 bytes (2 MB)", so also a bound value. */
  valueBytes: 2_000_000,
  /** "Maximum number of columns per table: 100". */
  columnsPerTable: 100,
} as const;

const utf8 = new TextEncoder();

/** UTF-8 length of a string: what D1 counts, where `length` counts UTF-16 code units. */
export function utf8Bytes(s: string): number {
  return /[^\p{ASCII}]/u.test(s) ? utf8.encode(s).length : s.length;
}

/** Bytes of a bound value as SQLite stores it (text as UTF-8, a blob as is); null for numbers and null. */
export function boundValueBytes(v: unknown): number | null {
  if (typeof v === "string") return utf8Bytes(v);
  if (v instanceof ArrayBuffer) return v.byteLength;
  if (ArrayBuffer.isView(v)) return v.byteLength;
  return null;
}

/**
 * The SQL with string literals, quoted identifiers and comments blanked out (same length), so what
 * is left is code: a `(` or `,` in a literal or comment is never counted.
 */
export function sqlCode(sql: string): string {
  let out = "";
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    const close = c === "'" ? "'" : c === '"' ? '"' : c === "`" ? "`" : c === "[" ? "]" : null;
    if (close !== null) {
      let j = i + 1;
      for (;;) {
        if (j >= sql.length) break;
        if (sql[j] === close) {
          if (close !== "]" && sql[j + 1] === close) j += 2; // '' inside '…', "" inside "…"
          else break;
        } else j++;
      }
      // A literal stays one token (x) so that `f('a', 'b')` still has two arguments.
      out += "x" + " ".repeat(Math.min(j, sql.length - 1) - i);
      i = j + 1;
    } else if (c === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i);
      const j = end === -1 ? sql.length : end;
      out += " ".repeat(j - i);
      i = j;
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      const j = end === -1 ? sql.length : end + 2;
      out += " ".repeat(j - i);
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

// SQLite's built-in functions (https://sqlite.org/lang_corefunc.html, lang_aggfunc, windowfunctions,
// lang_datefunc, lang_mathfunc) and every json*/jsonb* one. A table or column name followed by a
// parenthesis (INSERT INTO t (a, b, …), CREATE TABLE t (…)) is not a call and is not counted.
const FUNCTIONS = new Set(
  (
    "abs changes char coalesce concat concat_ws format glob hex if ifnull iif instr last_insert_rowid length like likelihood " +
    "likely load_extension lower ltrim max min nullif octet_length printf quote random randomblob replace round rtrim sign " +
    "soundex sqlite_compileoption_get sqlite_compileoption_used sqlite_offset sqlite_source_id sqlite_version substr " +
    "substring total_changes trim typeof unhex unicode unistr unistr_quote unlikely upper zeroblob " +
    "date time datetime julianday unixepoch strftime timediff " +
    "avg count group_concat string_agg sum total median percentile percentile_cont percentile_disc " +
    "row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value " +
    "acos acosh asin asinh atan atan2 atanh ceil ceiling cos cosh degrees exp floor ln log log10 log2 mod pi pow power " +
    "radians sin sinh sqrt tan tanh trunc"
  ).split(" "),
);
const isFunction = (name: string) => FUNCTIONS.has(name) || /^jsonb?(_\w+)?$/.test(name);

/** The call with the most arguments in the SQL (D1 allows 32 a call), or null when it calls none. */
export function widestFunctionCall(sql: string): { name: string; args: number } | null {
  const code = sqlCode(sql);
  let widest: { name: string; args: number } | null = null;
  for (const m of code.matchAll(/\b([A-Za-z_][A-Za-z0-9_]*)\s*\(/g)) {
    const name = m[1]!.toLowerCase();
    if (!isFunction(name)) continue;
    let depth = 0;
    let commas = 0;
    let empty = true;
    for (let i = m.index + m[0].length; i < code.length; i++) {
      const c = code[i]!;
      if (c === "(") depth++;
      else if (c === ")") {
        if (depth === 0) break;
        depth--;
      } else if (c === "," && depth === 0) commas++;
      if (!/\s|\)/.test(c)) empty = false;
    }
    const args = empty ? 0 : commas + 1;
    if (widest === null || args > widest.args) widest = { name, args };
  }
  return widest;
}
