/** A bench server in its own process (for the HTTP sender): prints its URL, stops on SIGTERM. */
import { createServer } from "../../src/server.js";
import { benchServerOptions } from "./options.js";

const [store] = process.argv.slice(2) as [string];
const server = await createServer(benchServerOptions(store));
await server.listen(0, "127.0.0.1");
process.stdout.write(`${server.url}\n`);
process.on("SIGTERM", () => void server.close().then(() => process.exit(0)));
