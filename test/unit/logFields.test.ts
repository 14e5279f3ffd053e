import { afterEach, describe, expect, it, vi } from "vitest";
import readme from "../../README.md?raw";
import { EVENT_LINES, type EventName, logEvent, REQUEST_LINE_FIELDS, REQUEST_LOG_FIELDS } from "../../src/log";

/** README's "Logs" section: the request table before the event table's header, the event table from it. */
function readmeLogTables(): { requests: string; events: string } {
  const start = readme.indexOf("\n### Logs\n");
  expect(start).toBeGreaterThan(0);
  const end = readme.indexOf("\n### ", start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  const header = section.indexOf("\n| event | level | when it is written | fields |\n");
  expect(header).toBeGreaterThan(0);
  return { requests: section.slice(0, header), events: section.slice(header) };
}

/** The field names of the request table (its rows' first cells). */
function readmeLogFields(): string[] {
  return [...readmeLogTables().requests.matchAll(/^\| `([a-z_0-9]+)` \|/gm)].map((m) => m[1]!);
}

/**
 * The event table's rows: the event (first cell), its level, and the fields its last cell names:
 * entries `name`: meaning (or `a`, `b`: meaning), each at the cell's start or after "; ".
 */
function readmeEvents(): { event: string; level: string; fields: string[] }[] {
  const rows = [...readmeLogTables().events.matchAll(/^\| `([^`|]+)` \| `(info|warn|error)` \| .* \| (.*) \|$/gm)];
  expect(rows.length).toBeGreaterThan(10);
  return rows.map((m) => ({
    event: m[1]!,
    level: m[2]!,
    fields: [...m[3]!.matchAll(/(?:^|; )((?:`[a-z_0-9]+`(?:, )?)+):/g)].flatMap((e) => [...e[1]!.matchAll(/`([a-z_0-9]+)`/g)].map((f) => f[1]!)),
  }));
}

const registered = (Object.entries(EVENT_LINES) as [EventName, (typeof EVENT_LINES)[EventName]][]).map(([event, spec]) => ({
  event,
  level: spec.level as string,
  fields: spec.fields.map((f: string) => f.replace(/\?$/, "")),
}));

/** Every source file of the worker, as text (Vite's glob, read when the test is built). */
const SOURCES = import.meta.glob<string>("../../src/**/*.ts", { query: "?raw", import: "default", eager: true });

/** The text of a call's argument starting at `from` (up to the comma or parenthesis that ends it at depth 0, strings skipped). */
function argumentAt(text: string, from: number): string {
  let depth = 0;
  let quote: string | null = null;
  for (let i = from; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === "\\") i++;
      else if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'" || ch === "`") quote = ch;
    else if ("([{".includes(ch)) depth++;
    else if (")]}".includes(ch)) {
      if (depth === 0) return text.slice(from, i).trim();
      depth--;
    } else if (ch === "," && depth === 0) return text.slice(from, i).trim();
  }
  return text.slice(from).trim();
}

describe("the request log line's fields", () => {
  it("README's Logs table lists exactly the fields a request line can carry, each once", () => {
    const documented = readmeLogFields();
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual([...REQUEST_LINE_FIELDS, ...REQUEST_LOG_FIELDS].sort());
  });

  it("logField is called only with a literal name of REQUEST_LOG_FIELDS, and every name of it is written somewhere", () => {
    expect(Object.keys(SOURCES).length).toBeGreaterThan(50);
    const known = new Set<string>(REQUEST_LOG_FIELDS);
    const used = new Set<string>();
    const strays: string[] = [];
    for (const [file, text] of Object.entries(SOURCES)) {
      for (const call of text.matchAll(/\blogField\(([^)]*)/g)) {
        if (/^\s*c: /.test(call[1]!)) continue; // the definition
        const name = /^\s*\w+\s*,\s*"([^"]+)"/.exec(call[1]!)?.[1];
        if (name === undefined || !known.has(name)) strays.push(`${file}: logField(${call[1]!.slice(0, 60)}`);
        else used.add(name);
      }
    }
    expect(strays).toEqual([]);
    expect(REQUEST_LOG_FIELDS.filter((f) => !used.has(f))).toEqual([]);
  });
});

describe("the event lines", () => {
  it("README's event table lists exactly the events of EVENT_LINES, each once, with its level and its fields", () => {
    const documented = readmeEvents();
    expect(new Set(documented.map((d) => d.event)).size).toBe(documented.length);
    for (const d of documented) expect(new Set(d.fields).size, `${d.event}: a field named twice`).toBe(d.fields.length);
    const normal = (rows: { event: string; level: string; fields: string[] }[]) =>
      rows.map((r) => ({ ...r, fields: [...r.fields].sort() })).sort((a, b) => a.event.localeCompare(b.event));
    expect(normal(documented)).toEqual(normal(registered));
  });

  it("logEvent writes the event as `message`, through the console method of its level, with its fields and no other", () => {
    const spies = { log: vi.spyOn(console, "log").mockImplementation(() => {}), warn: vi.spyOn(console, "warn").mockImplementation(() => {}), error: vi.spyOn(console, "error").mockImplementation(() => {}) };
    for (const { event, level, fields } of registered) {
      for (const s of Object.values(spies)) s.mockClear();
      (logEvent as (e: string, f: Record<string, unknown>) => void)(event, Object.fromEntries(fields.map((f) => [f, 1])));
      const spy = spies[level === "info" ? "log" : (level as "warn" | "error")];
      expect(spy, event).toHaveBeenCalledTimes(1);
      expect(Object.values(spies).reduce((n, s) => n + s.mock.calls.length, 0)).toBe(1);
      const line = JSON.parse(spy.mock.calls[0]![0] as string) as Record<string, unknown>;
      expect(line).toMatchObject({ level, message: event });
      expect(Object.keys(line).sort()).toEqual(["timestamp", "level", "message", ...fields].sort());
    }
  });
  afterEach(() => vi.restoreAllMocks());

  it("src writes event lines only through logEvent, only events of EVENT_LINES, and writes every one of them", () => {
    const known = new Set<string>(Object.keys(EVENT_LINES));
    const strays: string[] = [];
    const literals = new Set<string>();
    let calls = 0;
    for (const [file, text] of Object.entries(SOURCES)) {
      if (file.endsWith("/src/log.ts")) continue;
      // Every line goes through src/log.ts: the request line by writeLine (the logger), the others by logEvent.
      for (const m of text.matchAll(/\bconsole\.\w+|\blogLine\(|\bwriteLine\(/g)) {
        if (!(m[0] === "writeLine(" && file.endsWith("/src/middleware/logger.ts"))) strays.push(`${file}: ${m[0]}`);
      }
      for (const m of text.matchAll(/"([^"\n]+)"/g)) literals.add(m[1]!);
      // The event argument: logEvent's first, logRequestError's second (after the context).
      for (const m of text.matchAll(/\b(logEvent|logRequestError)(?:<[^(\n]*>)?\(/g)) {
        let from = m.index! + m[0].length;
        if (m[1] === "logRequestError") {
          const first = argumentAt(text, from);
          if (/^c: /.test(first)) continue; // the definition
          from = text.indexOf(",", from + first.length) + 1;
        }
        const arg = argumentAt(text, from);
        calls++;
        const names = [...arg.matchAll(/"([^"]*)"/g)].map((n) => n[1]!);
        // A literal (or a choice between literals), or an identifier typed EventName (its literals are at its source).
        const ok = /^[A-Za-z_]\w*$/.test(arg) || (names.length > 0 && !/[`+]/.test(arg) && names.every((n) => known.has(n)));
        if (!ok) strays.push(`${file}: ${m[1]}(… ${arg.slice(0, 80)}`);
      }
    }
    expect(calls).toBeGreaterThan(25);
    expect(strays).toEqual([]);
    expect([...known].filter((e) => !literals.has(e))).toEqual([]);
  });
});

/** Checked by `tsc --noEmit` (never run): each line must stay a type error, or tsc fails on its unused @ts-expect-error. */
export function eventTypeChecks(): void {
  // @ts-expect-error an event EVENT_LINES does not list
  logEvent("scheduled job exploded", { job: "purge" });
  // @ts-expect-error a field the event does not list
  logEvent("no consumer for queue", { queue: "q", customer_ref: "r" });
  // @ts-expect-error a listed field left out
  logEvent("scheduled job failed", { job: "purge", at: "2030-01-01T00:00:00.000Z" });
  const report = { customers_purged: 1, customer_ids: ["cus_1"] };
  // @ts-expect-error an unlisted field in a spread (a step's report)
  logEvent("scheduled job done", { job: "purge", at: "", duration_ms: 1, ...report });
  logEvent("analytics record dropped: the analytics queue refused it", { metric: "m", request_id: "r", kind: "decision", merchant_id: "m", failures: 1, error: "e" }); // `?` fields may be left out
}
