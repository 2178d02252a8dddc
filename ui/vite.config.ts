import { defineConfig } from "vitest/config";
import preact from "@preact/preset-vite";

// The window's files, built into dist/ and embedded in the app: no server, no CDN.
export default defineConfig({
  plugins: [preact()],
  clearScreen: false,
  build: {
    target: "safari15",
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
  },
  test: {
    environment: "node",
  },
});
