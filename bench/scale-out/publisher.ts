/**
 * A publisher process: publishes as told by the runner (see PublishMode in ipc.ts) and
 * reports how many messages were acknowledged, and when. Messages published over HTTP
 * carry their send time `t`, from which subscribers compute end-to-end latency.
 */
import { Agent, request } from "node:http";
import postgres from "postgres";
import type { PublishItem } from "../../src/core/bus.js";
import { TidingsBus as Bus } from "../../src/bus.js";
import { publishManyInTransaction } from "../../src/core/transactional.js";
import { Combiner } from "./combiner.js";
import { now, type FromPublisher, type PublishMode, type PublishResult, type ToPublisher } from "./ipc.js";

const send = (m: FromPublisher): void => void process.send!(m);

function postJson(agent: Agent, base: string, path: string, token: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, {
      method: "POST",
      agent,
      headers: { "content-type": "application/json", authorization: `Bearer ${token}`, "content-length": Buffer.byteLength(body) },
    });
    req.on("error", reject);
    req.on("response", (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.end(body);
  });
}

class Counter {
  messages = 0;
  requests = 0;
  errors = 0;
  firstError: string | null = null;
  readonly startedAt = now();

  fail(e: unknown): void {
    this.errors++;
    this.firstError ??= String(e);
  }

  result(): PublishResult {
    return { ...this, endedAt: now() };
  }
}

/** Runs `concurrency` loops of `step` until `durationMs` has passed. */
async function loops(concurrency: number, durationMs: number, step: (worker: number, c: Counter) => Promise<void>): Promise<PublishResult> {
  const c = new Counter();
  const end = c.startedAt + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (now() < end) {
        try {
          await step(w, c);
        } catch (e) {
          c.fail(e);
        }
      }
    }),
  );
  return c.result();
}

function payload(n: number, warmUp = false): Record<string, unknown> {
  return { type: "bench", n, t: now(), text: "invoice 42 changed", ...(warmUp ? { warm: true } : {}) };
}

async function run(db: string, channel: string, mode: PublishMode): Promise<PublishResult> {
  switch (mode.kind) {
    case "http": {
      const agent = new Agent({ keepAlive: true, maxSockets: mode.concurrency });
      let k = 0;
      return loops(mode.concurrency, mode.durationMs, async (_, c) => {
        const url = mode.urls[k++ % mode.urls.length]!;
        const body =
          mode.batch === 1
            ? JSON.stringify({ channel, message: payload(k) })
            : JSON.stringify({ messages: Array.from({ length: mode.batch }, (_, i) => ({ channel, message: payload(k * 1000 + i) })) });
        const status = await postJson(agent, url, `/${db}/publish`, mode.token, body);
        c.requests++;
        if (status !== 200) throw new Error(`HTTP ${status}`);
        c.messages += mode.batch;
      });
    }
    case "direct": {
      const bus = await Bus.create({ store: mode.storeUrl, databases: [db], logLevel: "silent" });
      const combiner = mode.combine ? new Combiner(bus, db) : null;
      try {
        return await loops(mode.concurrency, mode.durationMs, async (w, c) => {
          const items: PublishItem[] = Array.from({ length: mode.batch }, (_, i) => ({ channel, message: payload(w * 1e6 + i) }));
          await (combiner ? combiner.publishMany(items) : bus.publishMany(db, items));
          c.requests++;
          c.messages += mode.batch;
        });
      } finally {
        await bus.close();
      }
    }
    case "transactional": {
      const bus = await Bus.create({ store: mode.storeUrl, databases: [db], logLevel: "silent" });
      const sql = postgres(mode.pgUrl, { max: mode.concurrency, onnotice: () => {} });
      try {
        return await loops(mode.concurrency, mode.durationMs, async (w, c) => {
          const items: PublishItem[] = Array.from({ length: mode.batch }, (_, i) => ({ channel, message: payload(w * 1e6 + i) }));
          await sql.begin((tx) => publishManyInTransaction(bus, tx, db, items));
          c.requests++;
          c.messages += mode.batch;
        });
      } finally {
        await sql.end({ timeout: 5 });
        await bus.close();
      }
    }
    case "sql": {
      const sql = postgres(mode.pgUrl, { max: mode.concurrency, onnotice: () => {} });
      const fn = sql(mode.schema);
      try {
        return await loops(mode.concurrency, mode.durationMs, async (w, c) => {
          await sql`SELECT ${fn}.publish(${db}, ${channel}, ${sql.json({ type: "bench", n: w })})`;
          c.requests++;
          c.messages++;
        });
      } finally {
        await sql.end({ timeout: 5 });
      }
    }
    case "rate": {
      const agent = new Agent({ keepAlive: true, maxSockets: 64 });
      const c = new Counter();
      const requests = Math.floor(((mode.rate / mode.batch) * mode.durationMs) / 1000);
      const interval = (1000 * mode.batch) / mode.rate;
      const inFlight = new Set<Promise<void>>();
      for (let i = 0; i < requests; i++) {
        const due = c.startedAt + i * interval;
        const wait = due - now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        // The first second warms the instances up (JIT, pools); subscribers leave it out of latency.
        const warm = i * interval < 1000;
        const body =
          mode.batch === 1
            ? JSON.stringify({ channel, message: payload(i, warm) })
            : JSON.stringify({ messages: Array.from({ length: mode.batch }, (_, j) => ({ channel, message: payload(i * 1000 + j, warm) })) });
        const p: Promise<void> = postJson(agent, mode.url, `/${db}/publish`, mode.token, body).then(
          (status) => {
            c.requests++;
            if (status === 200) c.messages += mode.batch;
            else c.fail(`HTTP ${status}`);
          },
          (e: unknown) => c.fail(e),
        );
        const tracked = p.finally(() => inFlight.delete(tracked));
        inFlight.add(tracked);
      }
      await Promise.all(inFlight);
      return c.result();
    }
  }
}

process.on("message", (m: ToPublisher) => {
  if (m.type !== "run") return;
  run(m.db, m.channel, m.mode).then(
    (result) => send({ type: "done", result }),
    (e: unknown) => send({ type: "error", text: String((e as Error).stack ?? e) }),
  );
});
