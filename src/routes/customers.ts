import type { App } from "../env";

export function registerCustomersRoutes(_app: App): void {}
