import type { StoredMessage } from "../../stores/store.js";
import { encodePush } from "../../protocol/rohrpost.js";

/**
 * A complete server-to-client text frame (RFC 6455 §5.2: FIN, opcode 1, unmasked), header
 * and payload in one buffer. Server frames are never masked, so the same bytes can be
 * written to every socket.
 */
export function frameText(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x81;
  if (header === 2) {
    frame[1] = length;
  } else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  frame.write(text, header, "utf8");
  return frame;
}

// The push of a message is framed once and shared by every socket subscribed to its channel.
// Keyed by the message object the log holds, so it lives as long as the tail keeps it.
const pushFrames = new WeakMap<StoredMessage, Buffer>();
let lastMessage: StoredMessage | null = null;
let lastFrame: Buffer | null = null;

/** The framed `subscription-update` of a message, built on first use. */
export function pushFrame(m: StoredMessage): Buffer {
  // A fan-out asks for the same message many times in a row: skip the map lookup then.
  if (m === lastMessage) return lastFrame!;
  let frame = pushFrames.get(m);
  if (frame === undefined) {
    frame = frameText(encodePush(m.channel, m.id, m.json, false, m.type));
    pushFrames.set(m, frame);
  }
  lastMessage = m;
  lastFrame = frame;
  return frame;
}
