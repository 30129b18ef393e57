import type { StoredMessage } from "../stores/store.js";
import type { DbLog } from "./db-log.js";
import type { Listener } from "./listener.js";

const CATCH_UP_PAGE = 500;

export interface StreamHandlers {
  /** Messages in log order, once each. `gap` is true on the first batch after a lost cursor. */
  onMessages(messages: readonly StoredMessage[], gap: boolean): void;
  /** The catch-up read failed (store down): the stream is closed, the client should resume. */
  onError?(error: unknown): void;
}

/**
 * A live subscription (WebSocket, SSE): first what was missed after the cursor, read page
 * by page, then live messages, with neither a gap nor a duplicate at the seam.
 */
export class Stream {
  private closed = false;
  private live = false;
  private pending: StoredMessage[] = [];
  private readonly listener: Listener;

  constructor(
    private readonly log: DbLog,
    readonly channels: ReadonlySet<string>,
    after: string | null,
    private readonly handlers: StreamHandlers,
  ) {
    const self = this;
    this.listener = {
      channels,
      cursor: after,
      push(m) {
        self.pending.push(m);
      },
      flush() {
        const batch = self.pending;
        self.pending = [];
        if (!self.closed) self.handlers.onMessages(batch, false);
      },
      gap() {
        if (!self.closed) self.handlers.onMessages([], true);
      },
    };
    void this.catchUp(after);
  }

  get cursor(): string | null {
    return this.listener.cursor;
  }

  private async catchUp(after: string | null): Promise<void> {
    let cursor = after;
    let gap = false;
    try {
      for (;;) {
        // With nothing left to catch up, fetch registers our listener in the same tick.
        const res = await this.log.fetch(this.channels, cursor, CATCH_UP_PAGE, this.listener);
        if (this.closed) {
          this.log.removeListener(this.listener);
          return;
        }
        gap ||= res.gap;
        if (res.messages.length > 0) {
          cursor = res.messages[res.messages.length - 1]!.id;
          this.listener.cursor = cursor;
          this.handlers.onMessages(res.messages, gap);
          gap = false;
          if (this.closed) return;
          continue;
        }
        this.live = true;
        if (gap) this.handlers.onMessages([], true);
        return;
      }
    } catch (error) {
      this.close();
      this.handlers.onError?.(error);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.live) this.log.removeListener(this.listener);
  }
}
