/**
 * Two probes of issue 9, on loopback, in one process (numbers for docs/security.md):
 *
 *   node --expose-gc --import tsx bench/security/probes.ts [requests] [claims]
 *
 * - `databases`: `requests` (default 20,000) `POST /db<i>/bus` without credentials against
 *   `databases: "*"`: the databases loaded and the heap before and after.
 * - `claims`: one subscriber long-polling `claims` (default 10,000) distinct `client:<i>`
 *   channels on an SQLite store: the claims left in the file.
 */
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { createServer, type TidingsServer } from "../../src/server.js";
import { MemoryStore } from "../../src/stores/memory/index.js";
import { signToken } from "../../src/auth/tokens.js";

const SECRET = "probe-secret-probe-secret-probe-secret-0123";
const requests = Number(process.argv[2] ?? 20_000);
const claims = Number(process.argv[3] ?? 10_000);

/** POSTs `body` and resolves with the status, over a keep-alive agent. */
function post(agent: http.Agent, server: TidingsServer, path: string, body: string, authorization?: string): Promise<number> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { "content-type": "application/json", "content-length": Buffer.byteLength(body) };
    if (authorization !== undefined) headers.authorization = authorization;
    const req = http.request({ host: url.hostname, port: url.port, path, method: "POST", agent, headers }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(body);
  });
}

function count(statuses: Map<number, number>, got: readonly number[]): void {
  for (const s of got) statuses.set(s, (statuses.get(s) ?? 0) + 1);
}

async function databases(): Promise<void> {
  const server = await createServer({ secret: SECRET, logLevel: "silent", databases: ["*"], storeInstance: new MemoryStore() });
  await server.listen(0, "127.0.0.1");
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const body = '{"last_message":null,"channels":[]}';
  try {
    for (let i = 0; i < 2_000; i++) await post(agent, server, "/warm/bus", body); // the request path, warmed
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    const statuses = new Map<number, number>();
    for (let i = 0; i < requests; i += 100) {
      count(statuses, await Promise.all(Array.from({ length: Math.min(100, requests - i) }, (_, j) => post(agent, server, `/db${i + j}/bus`, body))));
    }
    global.gc?.();
    const after = process.memoryUsage().heapUsed;
    console.log(JSON.stringify({
      probe: "databases",
      requests,
      statuses: Object.fromEntries(statuses),
      loadedDatabases: server.bus.loadedLogs().size,
      heapUsedMB: [Math.round(before / 1e6), Math.round(after / 1e6)],
    }));
  } finally {
    agent.destroy();
    await server.close();
  }
}

async function clientClaims(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "tidings-probe-"));
  const path = join(dir, "tidings.db");
  const server = await createServer({ secret: SECRET, logLevel: "silent", databases: ["test"], store: `sqlite:${path}` });
  await server.listen(0, "127.0.0.1");
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  try {
    const bearer = `Bearer ${await signToken(SECRET, { db: "test", user: "7", role: "subscriber" })}`;
    // A message waits on user:7 after the cursor: every poll is answered at once.
    const cursor = await server.bus.publish("test", "room", { type: "start" });
    await server.bus.publish("test", "user:7", { type: "hello" });
    const statuses = new Map<number, number>();
    for (let i = 0; i < claims; i += 50) {
      const batch = Array.from({ length: Math.min(50, claims - i) }, (_, j) =>
        post(agent, server, "/test/bus", JSON.stringify({ last_message: cursor, channels: [`client:${i + j}`] }), bearer),
      );
      count(statuses, await Promise.all(batch));
    }
    const sql = new Database(path, { readonly: true });
    const rows = sql.prepare<[], number>("SELECT count(*) FROM owners").pluck().get();
    sql.close();
    console.log(JSON.stringify({ probe: "claims", claims, statuses: Object.fromEntries(statuses), claimsInFile: rows }));
  } finally {
    agent.destroy();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await databases();
await clientClaims();
