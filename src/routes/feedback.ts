import type { App } from "../env";

export function registerFeedbackRoutes(_app: App): void {}
