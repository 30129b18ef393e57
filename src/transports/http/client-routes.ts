import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { route, type RouteSpec } from "./router.js";

// Both trees sit at the same depth (src/transports/http, dist/transports/http): the SDK's
// sources ship in the package (`files`), so either tree bundles the same file.
const SDK_ENTRY = fileURLToPath(new URL("../../../src/client/index.ts", import.meta.url));
const DEMO_URL = new URL("../../../web/demo.html", import.meta.url);

interface Asset {
  readonly body: string;
  readonly etag: string;
}

let bundle: Promise<Asset> | undefined;

/**
 * The SDK as one browser ES module, bundled from `src/client/` by esbuild on the first request
 * and kept in memory: it can never be staler than the server's own sources (a bundle in
 * dist/ could be), it costs nothing to processes that never serve it, and platform "browser"
 * makes the build fail on any Node-only import.
 */
function sdkBundle(): Promise<Asset> {
  bundle ??= (async () => {
    const { build } = await import("esbuild");
    const out = await build({
      entryPoints: [SDK_ENTRY],
      bundle: true,
      write: false,
      format: "esm",
      platform: "browser",
      target: "es2020",
      minify: true,
      legalComments: "none",
      logLevel: "silent",
    });
    const body = out.outputFiles[0]!.text;
    return { body, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"` };
  })();
  bundle.catch(() => (bundle = undefined)); // a failed build is retried on the next request
  return bundle;
}

let demo: { readonly html: string; readonly csp: string } | undefined;

function demoPage(): { html: string; csp: string } {
  if (demo !== undefined) return demo;
  const html = readFileSync(DEMO_URL, "utf8");
  const hash = (tag: string): string[] =>
    [...html.matchAll(new RegExp(`<${tag}(?: type="module")?>([\\s\\S]*?)</${tag}>`, "g"))].map(
      (m) => `'sha256-${createHash("sha256").update(m[1]!, "utf8").digest("base64")}'`,
    );
  const csp = [
    "default-src 'self'",
    `script-src 'self' ${hash("script").join(" ")}`,
    `style-src 'self' 'unsafe-inline'`, // the SDK's toasts set inline styles
    "connect-src 'self' ws: wss:",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  demo = { html, csp };
  return demo;
}

/** `GET /client.js` (the browser SDK) and `GET /demo` (a page that uses it). */
export function clientRoutes(): RouteSpec[] {
  const sdk = route({ method: "GET", path: "/client.js", role: "public", summary: "The browser SDK (an ES module)", produces: "text/javascript", handler: async ({ req, res }) => {
    const { body, etag } = await sdkBundle();
    const headers = {
      etag,
      // Revalidated hourly: a new server version serves a new bundle within the hour; 304 meanwhile.
      "cache-control": "public, max-age=3600, must-revalidate",
      // Public code: pages of any origin may import it (module scripts are fetched with CORS).
      "access-control-allow-origin": "*",
      "x-content-type-options": "nosniff",
    };
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, "content-type": "text/javascript; charset=utf-8", "content-length": Buffer.byteLength(body) });
    res.end(body);
  } });
  const page = route({ method: "GET", path: "/demo", role: "public", summary: "A demo page that uses the SDK", produces: "text/html", handler: ({ res }) => {
    const { html, csp } = demoPage();
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-length": Buffer.byteLength(html),
      "cache-control": "no-store",
      "content-security-policy": csp,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    });
    res.end(html);
  } });
  return [sdk, page];
}
