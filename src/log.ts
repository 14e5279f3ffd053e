/**
 * One JSON line per event, the shape every log line of the worker shares: `timestamp`, `level`,
 * `message`, then the event's fields. Request lines (src/middleware/logger.ts) add the design
 * document's request fields. Customer ids never appear in the clear: callers pass pseudonyms.
 */
export function logLine(level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
  writeLine(level, { timestamp: new Date().toISOString(), level, message, ...fields });
}

export type LogLevel = "info" | "warn" | "error";

/** Writes through the console method of its level: the platform (wrangler tail, Workers Logs' level filter) reads the level from that, not from the JSON. */
export function writeLine(level: LogLevel, line: Record<string, unknown>): void {
  console[level === "info" ? "log" : level](JSON.stringify(line));
}

/** Where an unexpected error was thrown: the stack's frames, without the first line (the message, which `error` already holds). */
export function stackFrames(err: unknown): string | undefined {
  if (!(err instanceof Error) || !err.stack) return undefined;
  const frames = err.stack.split("\n").filter((l) => /^\s+at /.test(l));
  return frames.length > 0 ? frames.map((l) => l.trim()).join("\n") : undefined;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
