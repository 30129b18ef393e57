/**
 * The tidings server of bench/tryton, in a process of its own (as trytond is): the bus of
 * one Tryton database, on SQLite. argv: <tryton server url> <database> <sqlite path>.
 * Prints `listening <url>` once it leads the database's ingestion; stops on SIGTERM.
 */
import { createServer } from "../../src/server.js";

const [url, db, file] = process.argv.slice(2) as [string, string, string];
const server = await createServer({
  store: `sqlite:${file}`,
  secret: "bench-tryton-secret-bench-tryton-secret-0123",
  logLevel: "warn",
  databases: [db],
  pollTimeoutMs: 30_000,
  tryton: { url, pollIntervalMs: 200 },
});
await server.listen(0, "127.0.0.1");
const deadline = Date.now() + 20_000;
while (!server.tryton!.leads(db)) {
  if (Date.now() > deadline) throw new Error("tidings did not lead the Tryton database within 20 s");
  await new Promise((r) => setTimeout(r, 50));
}
console.log(`listening ${server.url}`);
process.once("SIGTERM", () => void server.close().then(() => process.exit(0)));
