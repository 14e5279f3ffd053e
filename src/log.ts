/**
 * One JSON line per event, the shape every log line of the worker shares: `timestamp`, `level`,
 * `message`, then the event's fields. Request lines (src/middleware/logger.ts) add the design
 * document's request fields. Customer ids never appear in the clear: callers pass pseudonyms.
 */
export function logLine(level: "info" | "warn" | "error", message: string, fields: Record<string, unknown> = {}): void {
  console[level === "info" ? "log" : level](JSON.stringify({ timestamp: new Date().toISOString(), level, message, ...fields }));
}

export function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
