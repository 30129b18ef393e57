/** One Server-Sent Event as the SDK needs it (`retry` is ignored: the SDK has its own backoff). */
export interface SseEvent {
  readonly event: string;
  readonly id: string | null;
  readonly data: string;
}

/**
 * An incremental `text/event-stream` parser (the WHATWG rules for fields, comments and
 * line ends), fed with decoded text chunks. Comments are reported too: they prove that the
 * connection is alive.
 */
export class SseParser {
  private buffer = "";
  private event = "";
  private id: string | null = null;
  private data: string[] = [];

  constructor(
    private readonly onEvent: (e: SseEvent) => void,
    private readonly onComment: () => void = () => {},
  ) {}

  push(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (m === null) return;
      // A lone \r at the very end may be the first half of \r\n: wait for more.
      if (m[0] === "\r" && m.index === this.buffer.length - 1) return;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line.length === 0) {
      if (this.data.length > 0) this.onEvent({ event: this.event || "message", id: this.id, data: this.data.join("\n") });
      this.event = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) {
      this.onComment();
      return;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\u0000")) this.id = value;
  }
}
