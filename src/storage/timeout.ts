/** A personalization read that takes longer than this answers `degraded` instead (a checkout never waits on us). */
export const STORAGE_TIMEOUT_MS = 1_500;

/** `p`, or a rejection naming `what` once STORAGE_TIMEOUT_MS has passed. */
export function withTimeout<T>(p: Promise<T>, what: string, ms = STORAGE_TIMEOUT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer!));
}
