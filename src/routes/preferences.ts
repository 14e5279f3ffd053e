import type { App } from "../env";

export function registerPreferencesRoutes(_app: App): void {}
