import type { ServerInput } from "../../src/server.js";

export const BENCH_SECRET = "bench-secret-bench-secret-bench-secret-0123";

/**
 * The server of the bench: silent, database "bench". One client answering 500 commands/s
 * sends 1,000 frames/s (started + result), past the default per-socket frame limit of 200:
 * a high-volume trusted bot is configured for it, as here.
 */
export function benchServerOptions(store: string): ServerInput {
  return {
    secret: BENCH_SECRET,
    logLevel: "silent",
    databases: ["bench"],
    store,
    ws: { maxFramesPerSecond: 100_000, maxPendingRequests: 10_000 },
    commands: { maxOpenPerAddress: 100_000, maxInFlight: 64 },
    maxParkedPollsPerUser: 10_000,
  };
}
