/**
 * The reverse proxy of docs/tryton.md, in a few lines of Node for the tests and the
 * benchmark: `POST /<db>/bus` goes to tidings, everything else to trytond (JSON-RPC, the
 * web client). A real deployment uses nginx or Caddy with the configuration in
 * docs/tryton.md; this one routes the same way. `pages` answers some paths itself
 * (test pages standing in for trytond's `[web] root`).
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

const BUS = /^\/[^/]+\/bus\/?(\?|$)/;

export interface Proxy {
  readonly url: string;
  close(): Promise<void>;
}

export async function startProxy(
  upstreams: { tidings: () => string; trytond: string },
  pages: (req: IncomingMessage, res: ServerResponse) => boolean = () => false,
): Promise<Proxy> {
  const server: Server = createServer((req, res) => {
    if (pages(req, res)) return;
    const target = new URL(req.url ?? "/", BUS.test(req.url ?? "") ? upstreams.tidings() : upstreams.trytond);
    const out = request(
      target,
      // The client's Host goes through (nginx: proxy_set_header Host $host): trytond refuses
      // a request whose Origin is not its Host (CORS check of trytond/wsgi.py).
      { method: req.method, headers: { ...req.headers, "x-forwarded-for": req.socket.remoteAddress ?? "" } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    out.on("error", () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    res.on("close", () => out.destroy());
    req.pipe(out);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
