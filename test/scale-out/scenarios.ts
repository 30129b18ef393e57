/**
 * The multi-instance proofs, written once and run against every shared engine: one order
 * on every instance and transport, a long-poll client moving between instances, and
 * faults under publishing load (an instance killed, engine connections killed, the engine
 * restarted) after which every acknowledged message reaches every subscriber exactly once.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { StoredMessage } from "../../src/stores/store.js";
import type { Engine } from "./engines.js";
import { Cluster, LoadPublisher, publish, publishMany, token, type PublishItem } from "./helpers.js";
import { LongPollSubscriber, subscribeEverywhere, type Subscriber } from "./subscribers.js";

export interface Setup {
  readonly cluster: Cluster;
  readonly engine: Engine;
  /** Token of the subscribing user (channels: *). */
  readonly subscriber: string;
  /** Token with the publisher role. */
  readonly publisher: string;
}

/** `instances` servers on `engine`, with a subscriber's and a publisher's token. */
export async function startSetup(engine: Engine, instances = 3): Promise<Setup> {
  const cluster = await Cluster.start(engine.storeUrl, instances);
  return { cluster, engine, subscriber: await token("u1"), publisher: await token("app", "publisher") };
}

function tag(): string {
  return randomBytes(3).toString("hex");
}

/** Where two id sequences part, in words, for a failure message that fits on a screen. */
function divergence(got: readonly string[], want: readonly string[]): string {
  let i = 0;
  while (i < got.length && i < want.length && got[i] === want[i]) i++;
  const seen = new Set(got);
  const missing = want.filter((id) => !seen.has(id)).length;
  const dups = got.length - seen.size;
  return `first difference at #${i} (got ${got[i]}, want ${want[i]}); got ${got.length}, want ${want.length}, missing ${missing}, duplicated ${dups}`;
}

/**
 * Every subscriber received exactly `expected` (the store's log of its channels): the same
 * ids in the same order, each once, with the same JSON, and no gap signal.
 */
export async function assertEveryoneGot(subs: readonly Subscriber[], expected: readonly StoredMessage[]): Promise<void> {
  assert.ok(expected.length > 0, "something was published");
  const last = expected.at(-1)!.id;
  await Promise.all(subs.map((s) => s.reaches(last)));
  const wantIds = expected.map((m) => m.id);
  const want = expected.map((m) => ({ id: m.id, channel: m.channel, message: JSON.parse(m.json) as unknown }));
  for (const s of subs) {
    assert.deepEqual(s.ids, wantIds, `${s.label}: ${divergence(s.ids, wantIds)}`);
    assert.deepEqual(
      s.received.map((r) => ({ id: r.id, channel: r.channel, message: r.message })),
      want,
      `${s.label}: the same JSON as the store holds`,
    );
    assert.equal(s.gaps, 0, `${s.label}: no gap signal`);
  }
}

/**
 * Instances publish concurrently (single messages and batches, on subscribed channels and
 * one nobody subscribed); subscribers of every transport on every instance, plus a
 * batching long-poll and a long-poll that moves from A to B mid-stream, all receive the
 * same messages in the same order.
 */
export async function oneOrderEverywhere({ cluster, engine, subscriber, publisher }: Setup): Promise<void> {
  const t = tag();
  const [x, y, z] = [`order-x-${t}`, `order-y-${t}`, `order-z-${t}`];
  const urls = cluster.urls;
  const start = await publish(urls[0]!, publisher, { channel: x, message: { type: "start" } });
  const subs = subscribeEverywhere(urls, subscriber, [x, y], start);
  const batching = new LongPollSubscriber(urls, 2, subscriber, [x, y], start, 25);
  const mover = new LongPollSubscriber(urls, 0, subscriber, [x, y], start);
  const everyone = [...subs, batching, mover];
  const acked: string[] = [];
  try {
    const round = (r: number): Promise<void> =>
      Promise.all(
        urls.map(async (url, i) => {
          for (let k = 0; k < 9; k++) {
            const body = { r, i, k, text: "Grüße ✓ \"quoted\"", nested: { list: [1, 2.5, null, true] } };
            if (k % 3 === 2) {
              const items: PublishItem[] = [
                { channel: x, message: { type: "batch", part: 0, ...body } },
                { channel: z, message: { type: "batch", part: 1, ...body } },
                { channel: y, message: { type: "batch", part: 2, ...body, message_id: "forged" } },
              ];
              const ids = await publishMany(url, publisher, items);
              acked.push(ids[0]!, ids[2]!);
            } else {
              acked.push(await publish(url, publisher, { channel: k % 2 === 0 ? x : y, message: { type: "single", ...body } }));
            }
          }
        }),
      ).then(() => {});

    await round(1);
    const perRound = acked.length;
    const second = round(2);
    // Mid-stream: messages of the second round are being published while the client moves.
    await mover.count(perRound + 3);
    mover.moveTo(1);
    await second;

    const expected = await engine.read([x, y], start);
    assert.deepEqual(new Set(expected.map((m) => m.id)), new Set(acked), "the log holds exactly what was acknowledged");
    assert.ok(!expected.some((m) => m.json.includes("forged")), "a publisher's message_id is replaced");
    await assertEveryoneGot(everyone, expected);

    const vias = mover.received.map((r) => r.via);
    const moved = vias.indexOf(1);
    assert.ok(moved >= perRound + 3, `the mover got ${moved} messages from A first`);
    assert.ok(moved < vias.length, "and the rest from B");
    assert.deepEqual(new Set(vias.slice(moved)), new Set([1]), "after moving, only from B");
  } finally {
    for (const s of everyone) s.close();
  }
}

export interface FaultPlan {
  /** Times `fault` strikes, with 40 acknowledged publishes between strikes (default 1). */
  readonly strikes?: number;
  /** Every subscriber drops its connection after every `resumeEvery` messages and resumes from its cursor. */
  readonly resumeEvery?: number;
}

/**
 * A publisher publishes without pause through A and B and keeps every acknowledged id;
 * subscribers of every transport listen on every instance. `fault` strikes mid-stream;
 * publishing goes on until 150 more messages are acknowledged. Every subscriber then holds
 * the whole log of the channel, in order, each message once, and it contains every
 * acknowledged id.
 */
export async function nothingLostUnder(
  { cluster, engine, subscriber, publisher }: Setup,
  fault: () => Promise<void>,
  { strikes = 1, resumeEvery }: FaultPlan = {},
): Promise<{ subs: Subscriber[]; load: LoadPublisher }> {
  const ch = `load-${tag()}`;
  const urls = cluster.urls;
  const start = await publish(urls[1]!, publisher, { channel: ch, message: { type: "start" } });
  const subs = subscribeEverywhere(urls, subscriber, [ch], start);
  if (resumeEvery !== undefined) for (const s of subs) s.resumeEvery(resumeEvery);
  const load = new LoadPublisher([urls[0]!, urls[1]!], publisher, ch, 4).start();
  try {
    await load.ackedMore(100);
    await Promise.all(subs.map((s) => s.count(20)));
    for (let k = 0; k < strikes; k++) {
      if (k > 0) await load.ackedMore(40, 30_000);
      await fault();
    }
    await load.ackedMore(150, 30_000);
    await load.stop();

    const expected = await engine.read([ch], start);
    const logged = new Set(expected.map((m) => m.id));
    const lost = load.acked.filter((id) => !logged.has(id));
    assert.deepEqual(lost, [], "every acknowledged publish is in the log");
    await assertEveryoneGot(subs, expected);
    if (resumeEvery !== undefined) {
      for (const s of subs) {
        // Messages already on their way when a connection is dropped can pass the next mark
        // before it closes: that drop and the next are one resume.
        const times = Math.floor(s.received.length / resumeEvery / 2);
        assert.ok(s.failovers >= times, `${s.label}: resumed ${s.failovers} times, at least ${times} on purpose`);
      }
    }
    return { subs, load };
  } finally {
    await load.stop();
    for (const s of subs) s.close();
  }
}
