/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The console is served by cmd/console from the embedded dist/; `npm run dev` proxies the
// API to a console on :8088.
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: false, assetsDir: "assets", sourcemap: false },
  server: { proxy: { "/api": "http://127.0.0.1:8088" } },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
