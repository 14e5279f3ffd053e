import type { App } from "../env";

export function registerCheckoutRoutes(_app: App): void {}
