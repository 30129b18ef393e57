/**
 * The layers of docs/architecture.md, checked on the import graph of src/ (type-only
 * imports count: they tie modules together as much as any other).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { cycles, importedNames, importGraph, packageImports, reachable } from "./import-graph.js";

const graph = importGraph();
const ENGINE = /^src\/stores\/(memory|sqlite|postgres|redis)\//;

/** What a layer must not import: the layers above it (docs/architecture.md, "What may import what"). */
const FORBIDDEN: Record<string, RegExp> = {
  "src/protocol/": /^src\/(?!protocol\/)/,
  "src/core/": /^src\/(commands|transports|cli|tryton|auth)\/|^src\/stores\/(memory|sqlite|postgres|redis)\/|^src\/(server|bus)\.ts$/,
  "src/stores/": /^src\/(commands|transports|cli|tryton|auth)\/|^src\/(server|bus)\.ts$/,
  "src/commands/": /^src\/(transports|cli|tryton)\/|^src\/stores\/(memory|sqlite|postgres|redis)\/|^src\/server\.ts$/,
  "src/auth/": /^src\/(commands|transports|cli|tryton)\/|^src\/stores\/(memory|sqlite|postgres|redis)\/|^src\/(server|bus)\.ts$/,
  "src/tryton/": /^src\/(commands|transports|cli)\/|^src\/stores\/(memory|sqlite|postgres|redis)\/|^src\/server\.ts$/,
  "src/transports/": /^src\/(cli|tryton)\/|^src\/stores\/(memory|sqlite|postgres|redis)\//,
};

function violations(layer: string, forbidden: RegExp): string[] {
  return [...graph]
    .filter(([module]) => module.startsWith(layer))
    .flatMap(([module, targets]) => targets.filter((t) => forbidden.test(t)).map((t) => `${module} -> ${t}`));
}

describe("the import graph of src/", () => {
  it("is read from every module", () => {
    assert.ok(graph.size > 100, `${graph.size} modules`);
    assert.ok(graph.get("src/server.ts")!.includes("src/transports/websocket/index.ts"));
  });

  it("has no import cycle", () => {
    assert.deepEqual(cycles(graph), []);
  });

  it("lets the browser SDK (src/client) reach nothing but itself and the wire formats", () => {
    const sdk = [...graph.keys()].filter((m) => m.startsWith("src/client/"));
    const outside = [...reachable(graph, sdk)].filter((m) => !m.startsWith("src/client/") && !m.startsWith("src/protocol/"));
    assert.deepEqual(outside, []);
  });

  it("keeps src/protocol free of everything but src/protocol", () => {
    assert.deepEqual(violations("src/protocol/", FORBIDDEN["src/protocol/"]!), []);
  });

  it("lets src/protocol use no package but TypeBox (its schemas), so that the wire formats stay browser-safe", () => {
    const outside = [...packageImports()]
      .filter(([module]) => module.startsWith("src/protocol/"))
      .flatMap(([module, packages]) => packages.filter((p) => p !== "@sinclair/typebox").map((p) => `${module} -> ${p}`));
    assert.deepEqual(outside, []);
  });

  it("keeps the core free of commands, transports and engines", () => {
    assert.deepEqual(violations("src/core/", FORBIDDEN["src/core/"]!), []);
  });

  it("keeps src/commands free of every transport: no module of src/transports, no WebSocket frame names", () => {
    const commands = [...graph.keys()].filter((m) => m.startsWith("src/commands/"));
    assert.ok(commands.includes("src/commands/claimer.ts"), commands.join(", "));
    const transports = commands.flatMap((m) => graph.get(m)!.filter((t) => t.startsWith("src/transports/")).map((t) => `${m} -> ${t}`));
    assert.deepEqual(transports, []);
    // The frame table and the frame body of a delivery are the WebSocket wire's (transports/websocket/command-wire.ts).
    const wire = commands.flatMap((m) =>
      importedNames(m, "src/protocol/commands.ts")
        .filter((name) => name === "FRAME" || name === "commandDelivery")
        .map((name) => `${m} imports ${name}`),
    );
    assert.deepEqual(wire, []);
  });

  for (const [layer, forbidden] of Object.entries(FORBIDDEN)) {
    if (layer === "src/protocol/" || layer === "src/core/") continue;
    it(`keeps ${layer} below the layers that use it`, () => {
      assert.deepEqual(violations(layer, forbidden), []);
    });
  }

  it("imports a store engine only where stores are picked by URL or tested", () => {
    const users = [...graph]
      .filter(([module]) => !ENGINE.test(module))
      .flatMap(([module, targets]) => (targets.some((t) => ENGINE.test(t)) ? [module] : []));
    assert.deepEqual(users.sort(), ["src/cli/changes.ts", "src/index.ts", "src/stores/open-store.ts"].sort());
  });
});
