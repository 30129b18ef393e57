import type { IncomingMessage } from "node:http";
import { isIPv4 } from "node:net";

/**
 * The client's address behind `trustedProxies` reverse proxies, each of which appends the
 * address it received the request from to X-Forwarded-For: the entry that many places from
 * the right, as werkzeug's ProxyFix takes it for trytond's `[web] num_proxies`, so that both
 * servers see the same address. With fewer entries, or no proxy trusted, the TCP peer's.
 */
export function clientAddress(req: IncomingMessage, trustedProxies: number): string {
  const peer = plainAddress(req.socket.remoteAddress ?? "");
  if (trustedProxies <= 0) return peer;
  const header = req.headers["x-forwarded-for"];
  const entries = (Array.isArray(header) ? header.join(",") : (header ?? "")).split(",").map((s) => s.trim());
  if (entries.length < trustedProxies || (entries.length === 1 && entries[0] === "")) return peer;
  return plainAddress(entries[entries.length - trustedProxies]!);
}

/** An IPv4 client on a dual-stack socket is `::ffff:a.b.c.d`: written as the IPv4 address, as a proxy writes it. */
function plainAddress(address: string): string {
  return address.startsWith("::ffff:") && isIPv4(address.slice(7)) ? address.slice(7) : address;
}
