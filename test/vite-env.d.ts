// Vite's module types for the tests: `?raw` imports and import.meta.glob (test/unit/logFields.test.ts).
/// <reference types="vite/client" />
