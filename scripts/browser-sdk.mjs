// How the browser SDK (src/client/) becomes the one ES module `GET /client.js` serves:
// shared by the build (dist/browser/client.js) and by a server running from sources,
// which bundles on the first request. Platform "browser" fails on any Node-only import.
import { fileURLToPath } from "node:url";

export const BROWSER_SDK_OPTIONS = {
  entryPoints: [fileURLToPath(new URL("../src/client/index.ts", import.meta.url))],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2020",
  minify: true,
  legalComments: "none",
  logLevel: "silent",
};
