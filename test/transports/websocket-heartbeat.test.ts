/**
 * The WebSocket heartbeat pings each connection once per interval, spread over the
 * interval rather than all in one turn (10,000 pings at once held every message back).
 */
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import { Heartbeat } from "../../src/transports/websocket/heartbeat.js";

/** Mocked time moves one step at a time, so each timer sees the clock of its own firing. */
function advance(ms: number, step: number): void {
  for (let t = 0; t < ms; t += step) mock.timers.tick(step);
}

class Member {
  heartbeatSlice = -1;
  readonly pings: number[] = [];
  heartbeat(now: number): void {
    this.pings.push(now);
  }
}

describe("WebSocket heartbeat", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setInterval", "Date"], now: 0 }));
  afterEach(() => mock.timers.reset());

  it("pings every member once per interval, a slice of them per tick", (t) => {
    const heartbeat = new Heartbeat<Member>(30_000);
    t.after(() => heartbeat.close());
    const members = Array.from({ length: 1000 }, () => new Member());
    for (const m of members) heartbeat.add(m);
    const perTick: number[] = [];
    let seen = 0;
    for (let i = 0; i < 64; i++) {
      mock.timers.tick(30_000 / 64);
      const total = members.reduce((n, m) => n + m.pings.length, 0);
      perTick.push(total - seen);
      seen = total;
    }
    assert.ok(members.every((m) => m.pings.length === 1), "each member pinged exactly once in one interval");
    assert.ok(Math.max(...perTick) <= Math.ceil(1000 / 64), `at most a slice per tick, got ${Math.max(...perTick)}`);
    advance(30_000, 30_000 / 64);
    assert.ok(members.every((m) => m.pings.length === 2 && m.pings[1]! - m.pings[0]! === 30_000), "a steady period");
  });

  it("keeps a member's period when others leave, and stops pinging one that left", (t) => {
    const heartbeat = new Heartbeat<Member>(1_000);
    t.after(() => heartbeat.close());
    const members = Array.from({ length: 50 }, () => new Member());
    for (const m of members) heartbeat.add(m);
    advance(1_000, 50);
    for (const m of members.slice(0, 25)) heartbeat.delete(m);
    advance(2_000, 50);
    assert.ok(members.slice(0, 25).every((m) => m.pings.length === 1), "no ping after leaving");
    for (const m of members.slice(25)) {
      assert.equal(m.pings.length, 3);
      assert.deepEqual([m.pings[1]! - m.pings[0]!, m.pings[2]! - m.pings[1]!], [1_000, 1_000]);
    }
  });
});
