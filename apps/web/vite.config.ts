/// <reference types="vitest/config" />
import { defineConfig } from "vite";

// The API serves dist/ in the embedded default; `npm run dev` proxies the API of a local
// `obd2-dashboard demo` (OBD2_API, default http://127.0.0.1:8000).
const api = process.env.OBD2_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  build: {
    target: "es2022",
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  server: {
    proxy: {
      "/api": { target: api, ws: true },
      "/healthz": api,
      "/readyz": api,
      "/metrics": api,
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
