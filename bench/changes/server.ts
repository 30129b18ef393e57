/**
 * One tidings instance of bench/changes and bench/reconnect-storm, in a process of its own.
 * argv: <store url> [port]. Sends `{ url }` to the parent once listening; stops on SIGTERM.
 * Channels are open to any token of the database (`accessRules`) and connections per address
 * are not limited: the benches measure the bus, not access rules or per-address limits.
 */
import { createServer } from "../../src/server.js";
import { BENCH_DB, BENCH_SECRET } from "./constants.js";

const [store, port] = process.argv.slice(2) as [string, string | undefined];
const server = await createServer({
  store,
  secret: BENCH_SECRET,
  logLevel: "silent",
  databases: [BENCH_DB],
  accessRules: [{ channels: "*" }],
  // Every bench client comes from 127.0.0.1; in production they come from many addresses.
  maxConnectionsPerAddress: 100_000,
  ws: { maxFramesPerSecond: 1_000_000, maxPendingRequests: 100_000 },
});
const address = await server.listen(Number(port ?? 0), "127.0.0.1");
process.send!({ url: `http://127.0.0.1:${address.port}` });
process.once("SIGTERM", () => void server.close().then(() => process.exit(0)));
