/**
 * The Server-Sent Events wire (DESIGN 5.3): `GET /<db>/events?channels=a,b` answered by a
 * `text/event-stream`. Each message is an event whose `id` is its message_id, so that the
 * browser's EventSource resumes with `Last-Event-ID`. No Node imports: the client SDK
 * shares this file.
 */

/** The `data` of a message event: the same shape as a Tryton long-poll answer. */
export function encodeMessageEvent(messageId: string, channel: string, messageJson: string): string {
  return `id: ${messageId}\n${dataLines(`{"channel":${JSON.stringify(channel)},"message":${messageJson}}`)}\n`;
}

/** Told before the messages that follow a cursor older than retention or unknown. */
export function encodeGapEvent(channels: readonly string[]): string {
  return `event: gap\n${dataLines(JSON.stringify({ channels }))}\n`;
}

/** How long the browser waits before reconnecting. */
export function encodeRetry(ms: number): string {
  return `retry: ${Math.max(0, Math.floor(ms))}\n\n`;
}

/** A comment line: ignored by EventSource, keeps proxies and the connection alive. */
export function encodeComment(text: string): string {
  return `: ${text.replace(/[\r\n]+/g, " ")}\n\n`;
}

/** One `data:` line per line of text (JSON text normally has none; a store might pretty-print). */
function dataLines(text: string): string {
  if (!/[\r\n]/.test(text)) return `data: ${text}\n`;
  return text
    .split(/\r\n|\r|\n/)
    .map((line) => `data: ${line}\n`)
    .join("");
}

/**
 * The channels of a request: comma-separated `channels=a,b` plus repeated `channel=`
 * parameters, each taken whole (a channel name may hold commas, e.g. `chat:sale.sale,12`).
 * Order kept, duplicates left to the core's validation.
 */
export function parseChannelParams(params: URLSearchParams): string[] {
  const out: string[] = [];
  for (const list of params.getAll("channels")) {
    for (const c of list.split(",")) if (c.length > 0) out.push(c);
  }
  for (const c of params.getAll("channel")) out.push(c);
  return out;
}

/** The cursor to resume from: `Last-Event-ID` (set by EventSource on reconnect), else `last_message`. */
export function resumeCursor(lastEventId: string | undefined, lastMessageParam: string | null): string | null {
  if (lastEventId !== undefined && lastEventId.trim().length > 0) return lastEventId.trim();
  if (lastMessageParam !== null && lastMessageParam.length > 0) return lastMessageParam;
  return null;
}
