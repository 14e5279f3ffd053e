// The tests read their target from the environment; the client itself never touches `process`.
declare const process: { env: Record<string, string | undefined> };
