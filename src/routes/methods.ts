import type { App } from "../env";

export function registerMethodsRoutes(_app: App): void {}
