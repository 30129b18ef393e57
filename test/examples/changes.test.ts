/**
 * docs/changes.md cannot drift from the code: every block it marks `<!-- checked: name -->`
 * is compared here with what tidings really sends. The complete example
 * (examples/changes/app.ts) runs as the page tells to run it, against the real PostgreSQL,
 * and must print exactly the page's frames; the change published over HTTP must reach a
 * WebSocket, an SSE and a long-poll subscriber in the page's shapes; the `tidings changes
 * watch` walk-through must publish the page's messages. Message ids differ per run: both
 * sides have them replaced by ID1, ID2… in order of appearance.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import WebSocket from "ws";
import { TidingsBus as Bus } from "../../src/bus.js";
import { TRANSPORTS, testClient } from "../client/helpers.js";
import type { TidingsServer } from "../../src/server.js";
import { request, startServer, token } from "../helpers/server.js";
import { POSTGRES_URL, storeEngines } from "../helpers/store-engines.js";
import { runCli, runNode } from "../cli/cli-process.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DOC = readFileSync(new URL("docs/changes.md", `file://${ROOT}`), "utf8");
const EXAMPLE = readFileSync(new URL("examples/changes/app.ts", `file://${ROOT}`), "utf8");

/** The fenced block right after `<!-- checked: name -->`, without its fences. */
function block(name: string): string {
  const m = new RegExp(`<!-- checked: ${name} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\\n\`\`\`\\n`).exec(DOC);
  assert.ok(m, `docs/changes.md has a checked block ${name}`);
  return m[1]!;
}

/** Message ids (`<epoch>:<hex position>`) replaced by ID1, ID2… in order of first appearance. */
function withoutIds(text: string): string {
  const seen = new Map<string, string>();
  return text.replace(/\b[0-9a-z]{6,}:[0-9a-f]{16,}\b/g, (id) => {
    if (!seen.has(id)) seen.set(id, `ID${seen.size + 1}`);
    return seen.get(id)!;
  });
}

/** JSON values, one per line or spread over several lines, as in the page's blocks. */
function jsonValues(text: string): unknown[] {
  const out: unknown[] = [];
  let acc = "";
  for (const line of text.split("\n")) {
    acc += `${line}\n`;
    try {
      out.push(JSON.parse(acc));
      acc = "";
    } catch {
      // a value continued on the next line
    }
  }
  assert.equal(acc.trim(), "", "every line is part of a JSON value");
  return out;
}

/** Both sides as JSON values with their ids replaced. */
function sameJson(got: string, documented: string, what: string): void {
  assert.deepEqual(jsonValues(withoutIds(got)), jsonValues(withoutIds(documented)), what);
}

/** Polls until `ready(value)` or fails after the deadline, saying what it last saw. */
async function until<T>(what: string, get: () => Promise<T>, ready: (v: T) => boolean, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ready(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const { engines, pgSchema, cleanup } = await storeEngines("docchanges");
const pg = engines.find((e) => e.name === "postgres")!;
after(cleanup);

describe("docs/changes.md, checked against the code", () => {
  it("quotes examples/changes/app.ts as it is", () => {
    const lines = block("example-excerpt").split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
    const missing = lines.filter((l) => !EXAMPLE.includes(l));
    assert.deepEqual(missing, []);
  });

  describe("a change published over HTTP, on each transport", () => {
    let server: TidingsServer;
    let ws: WebSocket;
    const frames: string[] = [];
    before(async () => {
      server = await startServer({ databases: ["shop"] });
      const subscriber = await token("7", { db: "shop", channels: ["invoice-*"] });
      ws = new WebSocket(`${server.url.replace(/^http/, "ws")}/shop/ws?token=${subscriber}`);
      ws.on("message", (data) => frames.push(data.toString()));
      await once(ws, "open");
    });
    after(async () => {
      ws?.close();
      await server?.close();
    });

    it("answers, and reaches WebSocket, SSE and long-poll subscribers, as the page shows", async () => {
      const subscriber = await token("7", { db: "shop", channels: ["invoice-*"] });
      const cursor = await server.bus.publish("shop", "marker", { type: "marker" });
      ws.send(JSON.stringify({ id: 1, type: "subscribe", data: { channels: ["invoice-42"], last_message: cursor } }));
      await until("the subscribe answer", async () => frames.length, (n) => n >= 1);
      assert.equal(frames.shift(), '{"id":1,"type":"subscribe","data":{"channels":["invoice-42"]}}');

      const res = await request(`${server.url}/shop/changes`, {
        token: await token("app", { db: "shop", role: "publisher" }),
        body: JSON.parse(block("http-request")),
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      // The answer's id is the one the subscribers get: one text, so the ids number alike.
      const answer = JSON.stringify(res.body);

      await until("the WebSocket push", async () => frames.length, (n) => n >= 1);
      sameJson(`${answer}\n${frames[0]!}`, `${block("http-answer")}\n${block("websocket")}`, "the HTTP answer and the WebSocket push");

      const poll = await request(`${server.url}/shop/bus`, { token: subscriber, body: { last_message: cursor, channels: ["invoice-42"] } });
      assert.equal(poll.status, 200);
      sameJson(`${answer}\n${JSON.stringify(poll.body)}`, `${block("http-answer")}\n${block("longpoll")}`, "the long-poll answer");

      // On each of its transports, the SDK hands its handler the long-poll answer's `message`.
      const documented = jsonValues(withoutIds(`${block("http-answer")}\n${block("longpoll")}`));
      for (const transport of TRANSPORTS) {
        const client = testClient({ url: server.url, db: "shop", token: subscriber, transports: [transport] });
        const handed: unknown[] = [];
        client.subscribe("invoice-42", (message) => handed.push(message), { from: cursor });
        try {
          await until(`the SDK's handler over ${transport}`, async () => handed.length, (n) => n >= 1);
        } finally {
          await client.close();
        }
        const got = jsonValues(withoutIds(`${answer}\n${JSON.stringify(handed[0])}`));
        assert.deepEqual(got, [documented[0], (documented[1] as { message: unknown }).message], transport);
      }

      const sse = await fetch(`${server.url}/shop/events?channels=invoice-42&last_message=${encodeURIComponent(cursor)}`, {
        headers: { authorization: `Bearer ${subscriber}` },
        signal: AbortSignal.timeout(30_000),
      });
      assert.equal(sse.status, 200);
      const reader = sse.body!.getReader();
      let text = "";
      while (!/\nid: [^\n]*\ndata: [^\n]*\n\n/.test(`\n${text}`)) {
        const { value, done } = await reader.read();
        assert.ok(!done, `the stream ended before an event: ${text}`);
        text += new TextDecoder().decode(value);
      }
      await reader.cancel();
      const event = /(id: [^\n]*\ndata: [^\n]*)\n\n/.exec(text)![1]!;
      assert.equal(withoutIds(`${answer}\n${event}`), withoutIds(`${JSON.stringify(JSON.parse(block("http-answer")))}\n${block("sse")}`));
    });
  });

  describe("on the real PostgreSQL", { skip: pg.skip }, () => {
    const app = `app_${pgSchema.slice("tidings_".length)}`;
    let sql: postgres.Sql;
    before(() => {
      sql = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} });
    });
    after(async () => {
      await sql?.unsafe(`DROP SCHEMA IF EXISTS ${app} CASCADE; DROP SCHEMA IF EXISTS ${app}_tidings CASCADE`);
      await sql?.end({ timeout: 5 });
    });

    it("the complete example prints exactly the page's frames, and sends each change to all three groups", async () => {
      const run = await runNode(["--import", "tsx", "examples/changes/app.ts", POSTGRES_URL, app], { cwd: ROOT, timeoutMs: 90_000 });
      assert.equal(run.code, 0, run.stderr);
      sameJson(run.stdout.trim(), block("example-output"), "the frames customer 7's browser received");
      const log = await sql<{ channel: string; kind: string }[]>`
        SELECT channel, payload::json->'data'->>'type' AS kind FROM ${sql(`${app}_tidings`)}.log ORDER BY xid::text::numeric, pos`;
      const kinds = ["create", "update", "delete"];
      assert.deepEqual(
        log.map((r) => `${r.kind} ${r.channel}`),
        kinds.flatMap((k) => [`${k} invoice-1`, `${k} customer-7`, `${k} invoices`]),
      );
    });

    it("the watch walk-through installs the triggers and publishes the page's messages", async () => {
      const store = `${POSTGRES_URL}?schema=${pgSchema}`;
      const local = (text: string) => text.replaceAll("public.invoice", `${app}w.invoice`);
      await sql.unsafe(`CREATE SCHEMA ${app}w`);
      try {
        await sql.unsafe(local(block("watch-table")));
        const words = block("watch-command").match(/'[^']*'|\S+/g)!.map((w) => w.replace(/^'(.*)'$/, "$1"));
        assert.equal(words[0], "tidings");
        const args = words.slice(1).map((w) => (w.startsWith("postgres://") ? store : local(w)));
        const watched = await runCli(args);
        assert.equal(watched.code, 0, watched.stderr);
        assert.equal(watched.stdout, `${local(block("watch-output"))}\n`);

        const bus = await Bus.create({ store, databases: ["shop"], logLevel: "silent" });
        try {
          const cursor = await bus.publish("shop", "marker", { type: "marker" });
          // One statement at a time, as psql sends them: in one query string, a ROLLBACK
          // would also undo the statements before its BEGIN.
          const statements = local(block("watch-writes")).replace(/--[^\n]*/g, "").split(";").map((s) => s.trim()).filter((s) => s.length > 0);
          for (const statement of statements) await sql.unsafe(statement);
          const read = () => bus.store.read("shop", { after: cursor, channels: ["customer-7", "invoice-1"], limit: 100 });
          const page = await until("the trigger's messages", read, (p) => p.messages.length >= 6);
          const on = (channel: string) => page.messages.filter((m) => m.channel === channel).map((m) => m.json).join("\n");
          sameJson(on("customer-7"), block("watch-messages"), "the messages on customer-7");
          sameJson(on("invoice-1"), block("watch-messages").replaceAll("customer-7", "invoice-1"), "the same on invoice-1");
          assert.equal(page.messages.length, 6, "nothing for the unwatched column nor the rollback");
        } finally {
          await bus.close();
        }
        const unwatched = await runCli(["changes", "unwatch", "--store", store, "--table", `${app}w.invoice`]);
        assert.equal(unwatched.code, 0, unwatched.stderr);
      } finally {
        await sql.unsafe(`DROP SCHEMA ${app}w CASCADE`);
      }
    });
  });
});
