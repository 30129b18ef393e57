import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { route, type RouteSpec } from "./router.js";

// Both trees sit at the same depth (src/transports/http, dist/transports/http).
const BUILT_SDK = new URL("../../browser/client.js", import.meta.url);
const DEMO_URL = new URL("../../../web/demo.html", import.meta.url);

interface Asset {
  readonly body: string;
  readonly etag: string;
}

let bundle: Promise<Asset> | undefined;

/**
 * The SDK as one browser ES module. The build bundles it into dist/browser/ with the server
 * it belongs to; a server running from sources (a checkout) has no such file and bundles
 * `src/client/` with esbuild (a development dependency) on the first request, so it is
 * never staler than the sources. Kept in memory either way.
 */
function sdkBundle(): Promise<Asset> {
  bundle ??= (async () => {
    const body = existsSync(BUILT_SDK) ? await readFile(BUILT_SDK, "utf8") : await bundleFromSources();
    return { body, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"` };
  })();
  bundle.catch(() => (bundle = undefined)); // a failed build is retried on the next request
  return bundle;
}

async function bundleFromSources(): Promise<string> {
  const [{ build }, { BROWSER_SDK_OPTIONS }] = await Promise.all([import("esbuild"), import("../../../scripts/browser-sdk.mjs")]);
  const out = await build({ ...BROWSER_SDK_OPTIONS, write: false });
  return out.outputFiles[0]!.text;
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
