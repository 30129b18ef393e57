/**
 * SQLite on a full disk (issue 9, faults): `tidings serve` on a small tmpfs of the test's
 * own, filled up under publishing. The publisher gets a clear 507, the server stays up and
 * keeps serving, nothing acknowledged is lost or corrupted, and publishing resumes by
 * itself when space returns.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statfsSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Cluster, publish, token } from "../scale-out/helpers.js";
import { assertEveryoneGot } from "../scale-out/scenarios.js";
import { subscribeEverywhere } from "../scale-out/subscribers.js";
import { sqliteFile } from "./sqlite-file.js";

const mnt = mkdtempSync(join(tmpdir(), "tidings-full-"));
const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt], { encoding: "utf8" });
const skip =
  mounted.status === 0 ? false : `cannot mount a small tmpfs to fill (needs root): ${(mounted.stderr || String(mounted.error)).trim()}`;
after(() => {
  if (mounted.status === 0) spawnSync("umount", [mnt]);
  rmSync(mnt, { recursive: true, force: true });
});

const file = sqliteFile(join(mnt, "tidings.db"));
const filler = join(mnt, "filler");

/** `POST /test/publish` of one message of about `bytes`; the status and body, whatever they are. */
async function tryPublish(url: string, bearer: string, channel: string, n: number, bytes: number) {
  const res = await fetch(`${url}/test/publish`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ channel, message: { type: "fill", n, pad: "x".repeat(bytes) } }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as { message_id?: string; error?: { code: string; message: string } } };
}

describe("SQLite on a disk that fills up", { skip }, () => {
  let cluster: Cluster;
  let subscriber: string;
  let publisher: string;
  before(async () => {
    cluster = await Cluster.start(file.storeUrl, 1);
    subscriber = await token("u1");
    publisher = await token("app", "publisher");
  });
  after(async () => {
    await cluster?.stop();
  });

  it("refuses publishes with 507 while full, loses and corrupts nothing, and resumes when space returns", async () => {
    const [url] = cluster.urls as [string];
    const ch = "full";
    const start = await publish(url, publisher, { channel: ch, message: { type: "start" } });
    const subs = subscribeEverywhere([url], subscriber, [ch], start);
    try {
      // Leave a little room, then publish until the disk is full.
      const { bavail, bsize } = statfsSync(mnt);
      writeFileSync(filler, Buffer.alloc(Math.max(0, bavail * bsize - 256 * 1024)));
      const acked: string[] = [];
      let refused: Awaited<ReturnType<typeof tryPublish>> | null = null;
      for (let n = 0; refused === null; n++) {
        assert.ok(n < 500, "the disk filled up within 500 publishes of 8 KiB");
        const res = await tryPublish(url, publisher, ch, n, 8 * 1024);
        if (res.status === 200) acked.push(res.body.message_id!);
        else refused = res;
      }
      assert.ok(acked.length > 0, "some publishes fit before the disk was full");
      assert.equal(refused.status, 507, JSON.stringify(refused.body));
      assert.equal(refused.body.error?.code, "TIDINGS_ERR_STORE_FULL");
      assert.match(refused.body.error!.message, /disk is full/);

      // Still full: refused again, the same way; the server itself is healthy and serves reads.
      assert.equal((await tryPublish(url, publisher, ch, -1, 8 * 1024)).status, 507);
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
      await Promise.all(subs.map((s) => s.reaches(acked.at(-1)!)));

      // Space returns: the next publish succeeds, with no restart.
      unlinkSync(filler);
      const later: string[] = [];
      for (let n = 0; n < 5; n++) later.push(await publish(url, publisher, { channel: ch, message: { type: "after", n } }));

      const expected = await file.read([ch], start);
      assert.deepEqual(expected.map((m) => m.id), [...acked, ...later], "the log holds exactly what was acknowledged, in order");
      await assertEveryoneGot(subs, expected);
    } finally {
      for (const s of subs) s.close();
    }

    assert.equal(await cluster.instances[0]!.served.stop("SIGTERM"), 0, "the server drains and exits cleanly");
    const raw = new Database(file.path, { readonly: true });
    try {
      assert.equal(raw.pragma("integrity_check", { simple: true }), "ok");
    } finally {
      raw.close();
    }
  });
});
