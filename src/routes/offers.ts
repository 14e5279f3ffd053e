import type { App } from "../env";

export function registerOffersRoutes(_app: App): void {}
