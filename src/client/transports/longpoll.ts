import { RemoteError } from "../types.js";
import { deadline, openHttp, requestJson } from "./http.js";
import {
  AUTH_CODES,
  type BusMessage,
  type DisconnectInfo,
  type StreamPlan,
  type StreamSink,
  type Transport,
  type TransportContext,
} from "./transport.js";

interface PollAnswer {
  readonly channel: string | null;
  readonly message: BusMessage | null;
  readonly messages?: ReadonlyArray<{ readonly channel: string; readonly message: BusMessage }>;
  readonly gap?: boolean;
}

/** A poll parked this long was accepted (credentials and channels are checked before parking). */
const ACCEPTED_AFTER_MS = 250;

/**
 * Tryton's long-poll wire (`POST /<db>/bus`) with the batch extension, for networks where
 * neither WebSocket nor a streaming response gets through. A poll is abandoned and sent again
 * after `livenessMs`: a parked request on a half-open connection would otherwise wait for the
 * server's poll timeout (5 minutes). A new plan cancels the parked poll.
 */
export class LongPollTransport implements Transport {
  readonly name = "longpoll" as const;
  readonly ended: Promise<DisconnectInfo>;
  private end!: (info: DisconnectInfo) => void;
  private readonly stop = new AbortController();
  private finished = false;
  private generation = 0;
  private poll: AbortController | null = null;

  constructor(private readonly ctx: TransportContext) {
    this.ended = new Promise((resolve) => (this.end = resolve));
  }

  open(): Promise<void> {
    return openHttp(this.ctx, this.stop.signal);
  }

  /**
   * Resolves when the first poll of the plan is answered, or has been parked for
   * ACCEPTED_AFTER_MS (the server checks credentials and channels before it parks a poll, so a
   * parked poll was accepted); rejects when that poll is refused.
   */
  sync(plan: StreamPlan, sink: StreamSink): Promise<void> {
    const generation = ++this.generation;
    this.poll?.abort();
    this.poll = null;
    if (plan.channels.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let settled = false;
      const accept = (error?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error === undefined) resolve();
        else reject(error);
      };
      const timer = setTimeout(() => accept(), ACCEPTED_AFTER_MS);
      const guarded: StreamSink = {
        message: (c, m) => sink.message(c, m),
        gap: (c) => sink.gap(c),
        refused: (e) => (settled ? sink.refused(e) : accept(e)),
      };
      void this.loop(generation, plan, guarded, () => accept()).finally(() => accept());
    });
  }

  private async loop(generation: number, plan: StreamPlan, sink: StreamSink, answered: () => void): Promise<void> {
    let cursor = plan.cursor;
    let refreshed = false;
    while (!this.finished && generation === this.generation) {
      const controller = new AbortController();
      this.poll = controller;
      const d = deadline(this.ctx.livenessMs, controller.signal);
      let answer: PollAnswer;
      try {
        answer = (await requestJson(
          this.ctx,
          "bus",
          { last_message: cursor, channels: plan.channels, max_messages: this.ctx.longPollBatch },
          d.signal,
        )) as PollAnswer;
      } catch (e) {
        if (generation !== this.generation || this.finished) return;
        if (controller.signal.aborted) continue; // our liveness deadline: ask again at once
        if (e instanceof RemoteError) {
          if (AUTH_CODES.has(e.code) && this.ctx.tokens.canRefresh && !refreshed) {
            refreshed = true;
            await this.ctx.tokens.refresh().catch(() => undefined);
            continue;
          }
          if (!AUTH_CODES.has(e.code) && e.details.status !== 503 && e.details.status !== 429) {
            sink.refused(e);
            return;
          }
          if (AUTH_CODES.has(e.code)) this.ctx.reportError(e);
        }
        this.finish(e instanceof RemoteError ? Number(e.details.status ?? 0) : 0, `poll failed: ${(e as Error).message}`);
        return;
      } finally {
        d.clear();
      }
      refreshed = false;
      if (generation !== this.generation || this.finished) return;
      answered();
      if (answer.gap === true) sink.gap(null);
      const batch = answer.messages ?? (answer.channel !== null && answer.message !== null ? [{ channel: answer.channel, message: answer.message }] : []);
      for (const m of batch) {
        if (typeof m.message?.message_id !== "string") continue;
        cursor = m.message.message_id;
        sink.message(m.channel, m.message);
        if (generation !== this.generation || this.finished) return;
      }
    }
  }

  /** Each poll reads the current token: nothing to do. */
  reauth(): void {}

  private finish(code: number, reason: string): void {
    if (this.finished) return;
    this.finished = true;
    this.poll?.abort();
    this.stop.abort();
    this.end({ transport: this.name, code, reason });
  }

  close(reason: string): void {
    this.finish(0, reason);
  }
}
