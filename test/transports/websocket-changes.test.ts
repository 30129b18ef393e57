/**
 * A model change reaches a rohrpost-js application exactly as rohrpost's mixins send it
 * (`data.type`, `data.group`, `data.object`), and tidings clients still find the whole
 * message under `data.message`. Asserted on the exact text of the frame.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import WebSocket from "ws";
import type { TidingsServer } from "../../src/server.js";
import { startServer, token } from "../helpers/server.js";
import { wsUrl } from "./websocket-helpers.js";

/** The raw text of every frame, in order; `next` fails after a deadline instead of hanging. */
class RawClient {
  private readonly texts: string[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      this.texts.push(data.toString());
      ws.emit("queued");
    });
  }
  static async open(url: string): Promise<RawClient> {
    const ws = new WebSocket(url);
    await once(ws, "open");
    return new RawClient(ws);
  }
  async next(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.texts.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for a frame");
      await Promise.race([once(this.ws, "queued"), new Promise((r) => setTimeout(r, left).unref())]);
    }
    return this.texts.shift()!;
  }
  async close(): Promise<void> {
    this.ws.close();
    await once(this.ws, "close");
  }
}

describe("WebSocket push of a model change", () => {
  let server: TidingsServer;
  let client: RawClient;
  before(async () => {
    server = await startServer();
    client = await RawClient.open(wsUrl(server, { token: await token("7", { channels: ["invoice-*"] }) }));
  });
  after(async () => {
    await client?.close();
    await server?.close();
  });

  test("is rohrpost's subscription-update with type, group and object, and the message beside them", async () => {
    client.ws.send(JSON.stringify({ id: 1, type: "subscribe", data: { type: "invoice", id: 42 } }));
    assert.equal(await client.next(), '{"id":1,"type":"subscribe","data":{"group":"invoice-42"}}');
    server.bus.changes.model("invoice", { serialize: (o) => ({ id: o.id, state: o.state }) });
    const [id] = await server.bus.changes.updated("test", "invoice", { id: 42, state: "paid", total: 10 }, { updatedFields: ["state"] });
    const object = '{"id":42,"state":"paid","updated_fields":["state"]}';
    assert.equal(
      await client.next(),
      `{"type":"subscription-update","id":"${id}","data":{"type":"update","group":"invoice-42","object":${object},` +
        `"message":{"message_id":"${id}","type":"subscription-update","data":{"type":"update","group":"invoice-42","object":${object}}}}}`,
    );
    // Any other message keeps the one shape every push has.
    const other = await server.bus.publish("test", "invoice-42", { type: "note", text: "hi" });
    assert.equal(
      await client.next(),
      `{"type":"subscription-update","id":"${other}","data":{"group":"invoice-42","message":{"message_id":"${other}","type":"note","text":"hi"}}}`,
    );
  });
});
