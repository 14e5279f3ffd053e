import { defineConfig } from "vitest/config";

// The client runs in Node (and browsers), not in workerd: its own config, apart from the worker's
// vitest.config.ts. The live tests need TAP2_* variables: run them with `npm run test:clients`.
export default defineConfig({
  root: decodeURIComponent(new URL(".", import.meta.url).pathname),
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    testTimeout: 30_000,
    fileParallelism: false,
  },
});
