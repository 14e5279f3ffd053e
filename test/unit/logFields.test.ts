import { describe, expect, it } from "vitest";
import readme from "../../README.md?raw";
import { REQUEST_LINE_FIELDS, REQUEST_LOG_FIELDS } from "../../src/log";

/** The field names of the table in README's "Logs" section (its rows' first cells). */
function readmeLogFields(): string[] {
  const start = readme.indexOf("\n### Logs\n");
  expect(start).toBeGreaterThan(0);
  const end = readme.indexOf("\n### ", start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/^\| `([a-z_0-9]+)` \|/gm)].map((m) => m[1]!);
}

/** Every source file of the worker, as text (Vite's glob, read when the test is built). */
const SOURCES = import.meta.glob<string>("../../src/**/*.ts", { query: "?raw", import: "default", eager: true });

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
