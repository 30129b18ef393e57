/**
 * tidings with the memory store (the peers keep nothing either): subscribers subscribe to
 * the channel "bench" over rohrpost; the publisher publishes to it with `publish` frames.
 * Only the limits a load test would trip are raised: the publisher's frame rate and
 * pending requests.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "../../../src/server.js";
import { MemoryStore } from "../../../src/stores/memory/index.js";
import { BENCH_SECRET } from "../protocols.js";
import { serveRunner } from "./server-process.js";

const server = await createServer({
  secret: BENCH_SECRET,
  logLevel: "silent",
  dataDir: mkdtempSync(join(tmpdir(), "tidings-bench-")),
  databases: ["bench"],
  storeInstance: new MemoryStore(),
  accessRules: [{ channels: "bench" }],
  ws: { maxFramesPerSecond: 1_000_000, maxPendingRequests: 100_000 },
});
const address = await server.listen(0, "127.0.0.1");
serveRunner(address.port);
