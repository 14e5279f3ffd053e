import type { App } from "../env";

export function registerAnalyticsRoutes(_app: App): void {}
