/**
 * `client:<id>` channels belong to their first user only while that user keeps using them:
 * a claim lapses `clientClaimTtlMs` after its last use and is deleted from the store, and a
 * user holds at most `maxClientClaimsPerUser` (claiming more frees its least recently used).
 * One subscriber made 90,000 permanent claims in 11 s before; now the file stays bounded.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token, request } from "../helpers/server.js";
import { FrameClient, wsUrl } from "./websocket-helpers.js";

const dir = mkdtempSync(join(tmpdir(), `tidings-claims-${process.pid}-`));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Claims recorded in the SQLite file, as another process reading it sees them. */
function claimsOnDisk(path: string): Array<{ key: string; owner: string }> {
  const sql = new Database(path, { readonly: true });
  try {
    return sql.prepare<[], { key: string; owner: string }>("SELECT key, owner FROM owners WHERE db = 'test' ORDER BY key").all();
  } finally {
    sql.close();
  }
}

async function sleepUntil(t: number): Promise<void> {
  const left = t - Date.now();
  if (left > 0) await new Promise((r) => setTimeout(r, left));
}

describe("client:<id> claims", () => {
  let server: TidingsServer;
  let path: string;
  let cursor: string;
  let t7: string;
  let t8: string;
  const TTL = 4_000;

  /** A poll answered at once (a message waits on user:7/user:8 after the cursor). */
  const poll = (tok: string, channel: string) =>
    request(`${server.url}/test/bus`, { token: tok, body: { last_message: cursor, channels: [channel] } });

  before(async () => {
    path = join(dir, "claims.db");
    server = await startServer({ store: `sqlite:${path}`, clientClaimTtlMs: TTL, maxClientClaimsPerUser: 5, pollTimeoutMs: 2_000 });
    cursor = await server.bus.publish("test", "room", { type: "start" });
    await server.bus.publish("test", "user:7", { type: "for 7" });
    await server.bus.publish("test", "user:8", { type: "for 8" });
    t7 = await token("7");
    t8 = await token("8");
  });
  after(() => server.close());

  it("keeps at most maxClientClaimsPerUser claims of one user on disk, the most recently used ones", async () => {
    for (let i = 0; i < 40; i++) {
      const res = await poll(t7, `client:cap-${i}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
    const mine = claimsOnDisk(path).filter((c) => c.owner === "7");
    assert.deepEqual(mine.map((c) => c.key), ["client:cap-35", "client:cap-36", "client:cap-37", "client:cap-38", "client:cap-39"]);
    // The newest window's channel keeps working for its user, and is nobody else's.
    assert.equal((await poll(t7, "client:cap-39")).status, 200);
    const other = await poll(t8, "client:cap-39");
    assert.equal(other.status, 403);
    assert.equal(other.body.error.code, "TIDINGS_ERR_CHANNEL_FORBIDDEN");
  });

  it("deletes a claim its owner stopped using, and frees the id for another user", async () => {
    const start = Date.now();
    assert.equal((await poll(t7, "client:lapse")).status, 200);
    assert.equal((await poll(t8, "client:lapse")).status, 403, "user 7's while it lives");
    await sleepUntil(start + TTL + 200);
    await server.bus.runRetention();
    assert.deepEqual(
      claimsOnDisk(path).filter((c) => c.key === "client:lapse" || c.key.startsWith("client:cap-")),
      [],
      "lapsed claims are deleted from the file, not only ignored",
    );
    assert.equal((await poll(t8, "client:lapse")).status, 200);
    assert.equal((await poll(t7, "client:lapse")).status, 403, "now user 8's");
  });

  it("renews a claim each time its owner polls, and while its WebSocket stays subscribed", async () => {
    const start = Date.now();
    assert.equal((await poll(t7, "client:polled")).status, 200);
    const ws = await FrameClient.open(wsUrl(server, { token: t7 }));
    try {
      const reply = await ws.request({ id: 1, type: "subscribe", data: { channels: ["client:socket"] } });
      assert.equal(reply.error, undefined, JSON.stringify(reply));
      // Past the first claim's lifetime the long-poll polls again; the socket only stays open.
      await sleepUntil(start + TTL * 0.6);
      assert.equal((await poll(t7, "client:polled")).status, 200);
      await sleepUntil(start + TTL + 400);
      await server.bus.runRetention();
      for (const channel of ["client:polled", "client:socket"]) {
        const res = await poll(t8, channel);
        assert.equal(res.status, 403, `${channel} is still user 7's`);
      }
      assert.deepEqual(
        claimsOnDisk(path).filter((c) => c.key === "client:polled" || c.key === "client:socket"),
        [
          { key: "client:polled", owner: "7" },
          { key: "client:socket", owner: "7" },
        ],
      );
    } finally {
      await ws.close();
    }
  });
});
