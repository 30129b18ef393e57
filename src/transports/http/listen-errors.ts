import { TidingsError } from "../../errors.js";

const WHY: Record<string, string> = {
  EADDRINUSE: "is already in use (another tidings, or another program?); stop it or choose another --port",
  EACCES: "needs privileges this process does not have; choose a port above 1023",
  EADDRNOTAVAIL: "is not an address of this machine; check --host",
  ENOTFOUND: "names a host that does not resolve; check --host",
};

/** A listen error as one sentence naming host and port, instead of Node's stack trace. */
export function listenFailed(e: NodeJS.ErrnoException, host: string, port: number): TidingsError {
  const address = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  const why = (e.code !== undefined ? WHY[e.code] : undefined) ?? `cannot be listened on: ${e.message}`;
  return new TidingsError("TIDINGS_ERR_LISTEN_FAILED", `Cannot listen on ${address}: it ${why}.`, { cause: e });
}
