import type { App } from "../env";

export function registerConsentRoutes(_app: App): void {}
