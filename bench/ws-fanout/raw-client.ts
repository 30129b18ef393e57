import { connect, type Socket } from "node:net";

/**
 * Every socket of the process reads into this one buffer (node's `onread`, which skips the
 * stream machinery and a buffer allocation per read); what is parsed is used before the
 * next read, and an incomplete frame is copied out.
 */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

/**
 * A minimal WebSocket client on a raw TCP socket: a hand-written upgrade and a frame
 * parser that only looks at headers, so that a subscriber costs far less CPU per message
 * than any server under test (otherwise the benchmark would measure the clients).
 * Text frames are handed over as (buffer, start, end) without copying or decoding; the
 * buffer is only valid during the call.
 */
export class RawClient {
  private rest: Buffer | null = null;
  private upgraded = false;
  private head: Buffer | null = null;
  onText: (buf: Buffer, start: number, end: number, client: RawClient) => void = () => {};
  onClose: () => void = () => {};

  private constructor(readonly socket: Socket) {}

  /** Connects and upgrades; `onText` is set first, as frames may arrive with the upgrade response. */
  static open(port: number, path: string, onText: RawClient["onText"], host = "127.0.0.1"): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      let client!: RawClient;
      const socket = connect({
        port,
        host,
        noDelay: true,
        onread: {
          buffer: READ_BUFFER,
          callback: (n: number, buf: Uint8Array) => {
            client.onRead(buf as Buffer, n);
            return true;
          },
        },
      });
      client = new RawClient(socket);
      client.onText = onText;
      socket.once("connect", () => {
        socket.write(
          `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
      });
      client.onHead = (chunk: Buffer) => {
        client.head = client.head === null ? Buffer.from(chunk) : Buffer.concat([client.head, chunk]);
        const end = client.head.indexOf("\r\n\r\n");
        if (end < 0) return;
        const status = client.head.subarray(0, client.head.indexOf("\r\n")).toString("latin1");
        if (!status.startsWith("HTTP/1.1 101")) {
          reject(new Error(`upgrade refused: ${status}`));
          socket.destroy();
          return;
        }
        client.upgraded = true;
        // Frames may follow the response head in the same chunk.
        const tail = client.head.subarray(end + 4);
        client.head = null;
        resolve(client);
        if (tail.length > 0) client.receive(tail);
      };
      socket.once("error", reject);
      socket.once("close", () => client.onClose());
    });
  }

  private onHead: (chunk: Buffer) => void = () => {};

  private onRead(buf: Buffer, n: number): void {
    const chunk = buf.subarray(0, n);
    if (this.upgraded) this.receive(chunk);
    else this.onHead(chunk);
  }

  private receive(chunk: Buffer): void {
    let buf = chunk;
    if (this.rest !== null) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    let off = 0;
    const n = buf.length;
    while (off + 2 <= n) {
      const b0 = buf[off]!;
      let len = buf[off + 1]! & 0x7f;
      let hdr = 2;
      if (len === 126) {
        if (off + 4 > n) break;
        len = buf.readUInt16BE(off + 2);
        hdr = 4;
      } else if (len === 127) {
        if (off + 10 > n) break;
        len = buf.readUInt32BE(off + 2) * 2 ** 32 + buf.readUInt32BE(off + 6);
        hdr = 10;
      }
      if (off + hdr + len > n) break;
      const op = b0 & 0x0f;
      const start = off + hdr;
      if (op === 1) this.onText(buf, start, start + len, this);
      else if (op === 9) this.sendFrame(0x8a, buf.subarray(start, start + len));
      else if (op === 8) this.socket.end();
      off = start + len;
    }
    // The read buffer is shared: keep a copy of an incomplete frame.
    if (off < n) this.rest = Buffer.from(buf.subarray(off));
  }

  /** A masked client frame with a zero key (so the payload is sent as is). */
  private sendFrame(firstByte: number, payload: Buffer): void {
    const len = payload.length;
    const hdr = len < 126 ? 2 : len < 65_536 ? 4 : 10;
    const frame = Buffer.allocUnsafe(hdr + 4 + len);
    frame[0] = firstByte;
    if (hdr === 2) frame[1] = 0x80 | len;
    else if (hdr === 4) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(len, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeUInt32BE(0, 2);
      frame.writeUInt32BE(len, 6);
    }
    frame.writeUInt32BE(0, hdr);
    payload.copy(frame, hdr + 4);
    this.socket.write(frame);
  }

  sendText(text: string): void {
    this.sendFrame(0x81, Buffer.from(text));
  }

  close(): void {
    this.socket.destroy();
  }
}
