export * from "./client";
export { Tap2Error, type Tap2ErrorDetail } from "./errors";
export type { components, paths } from "./schema";
