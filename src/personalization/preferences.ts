import type { ErrorDetail } from "../errors";

export interface PreferenceValues {
  default_method: string | null;
  favorite_methods: readonly string[];
  excluded_methods: readonly string[];
}

export interface PreferenceChange {
  default_method?: string | null | undefined;
  favorite_methods?: readonly string[] | undefined;
  excluded_methods?: readonly string[] | undefined;
}

/** Whether a change sets any method field (the rest of a PUT is consent flags). */
export function namesMethodFields(change: PreferenceChange): boolean {
  return change.default_method !== undefined || change.favorite_methods !== undefined || change.excluded_methods !== undefined;
}

/** Merge semantics of PUT: a field left out keeps its stored value. */
export function mergePreferences(current: PreferenceValues, change: PreferenceChange): PreferenceValues {
  return {
    default_method: change.default_method === undefined ? current.default_method : change.default_method,
    favorite_methods: change.favorite_methods ?? current.favorite_methods,
    excluded_methods: change.excluded_methods ?? current.excluded_methods,
  };
}

/**
 * The rules a single field's schema cannot check: every method enabled for the merchant, the default
 * not excluded, no method both favourite and excluded — judged on the merged result, and reported at
 * the field of the request that caused the conflict.
 */
export function preferenceProblems(change: PreferenceChange, merged: PreferenceValues, enabled: readonly string[]): ErrorDetail[] {
  const enabledSet = new Set(enabled);
  const problems: ErrorDetail[] = [];
  const notEnabled = (id: string) => `method ${id} is not enabled for this merchant`;
  if (change.default_method && !enabledSet.has(change.default_method)) problems.push({ path: "default_method", message: notEnabled(change.default_method) });
  for (const field of ["favorite_methods", "excluded_methods"] as const) {
    change[field]?.forEach((id, i) => {
      if (!enabledSet.has(id)) problems.push({ path: `${field}.${i}`, message: notEnabled(id) });
    });
  }
  if (problems.length > 0) return problems;
  // A change of consent alone is never refused over the stored method fields (an opt-out must
  // always be recordable, whatever state an older write left them in).
  if (!namesMethodFields(change)) return problems;

  const excluded = new Set(merged.excluded_methods);
  if (merged.default_method && excluded.has(merged.default_method)) {
    const path = change.default_method !== undefined ? "default_method" : `excluded_methods.${merged.excluded_methods.indexOf(merged.default_method)}`;
    problems.push({ path, message: `default_method ${merged.default_method} may not be excluded` });
  }
  merged.favorite_methods.forEach((id, i) => {
    if (!excluded.has(id)) return;
    const path = change.favorite_methods !== undefined ? `favorite_methods.${i}` : `excluded_methods.${merged.excluded_methods.indexOf(id)}`;
    problems.push({ path, message: `method ${id} may not be both a favourite and excluded` });
  });
  return problems;
}
