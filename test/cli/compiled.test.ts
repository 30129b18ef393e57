import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ROOT, distIsFresh } from "../../scripts/dist-state.mjs";
import { post, runCli, runCliOk, serve, tempDir, type Served } from "./cli-process.js";

// `npm install` builds dist/; a checkout edited since then runs from source (tested everywhere else).
const skip = distIsFresh() ? false : "dist/ is missing or older than src/: run `npm run build`";

describe("the compiled tree (dist/)", { skip }, () => {
  const dir = tempDir();
  let server: Served | undefined;

  before(async () => {
    server = await serve(["--data-dir", dir.path, "--store", `sqlite:${join(dir.path, "t.db")}`, "--databases", "test"]);
  });
  after(async () => {
    await server?.stop("SIGKILL");
    dir.remove();
  });

  it("is what `tidings serve` runs, without a TypeScript loader", () => {
    const listening = server!.logs.find((l) => l.msg === "tidings listening")!;
    assert.equal(listening.runtime, "compiled");
  });

  it("serves the SQLite store (its SQL files travel with it) and the admin page", async () => {
    const published = await runCli(["publish", "--url", server!.url, "--data-dir", dir.path, "--db", "test", "--channel", "user:3", '{"type":"built"}']);
    assert.equal(published.code, 0, published.stderr);
    const token = await runCliOk(["token", "--data-dir", dir.path, "--db", "test", "--user", "3"]);
    const res = await post(`${server!.url}/test/bus`, token, { last_message: null, channels: ["user:3"] });
    assert.deepEqual(res.body, { channel: "user:3", message: { message_id: published.stdout.trim(), type: "built" } });
    const admin = await fetch(`${server!.url}/admin`);
    assert.equal(admin.status, 200);
    assert.match(await admin.text(), /<html/i);
  });
});

/**
 * The package as a user gets it: `npm pack`, the tarball unpacked into an empty project as
 * npm would, its runtime dependencies beside it (linked from this checkout: no registry),
 * and neither tsx nor esbuild anywhere the package could find them.
 */
describe("the packed package", { skip }, () => {
  const dir = tempDir();
  const app = join(dir.path, "app");
  let manifest: { version: string; dependencies: Record<string, string> };

  before(async () => {
    const packed = await run("npm", ["pack", "--ignore-scripts", "--pack-destination", dir.path, "--json"], ROOT);
    const [{ filename }] = JSON.parse(packed) as [{ filename: string }];
    const pkg = join(app, "node_modules", "tidings");
    mkdirSync(pkg, { recursive: true });
    await run("tar", ["-xzf", join(dir.path, filename), "-C", pkg, "--strip-components=1"], dir.path);
    manifest = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")) as typeof manifest;
    // What npm would install with it, plus the consumer's own TypeScript and Node types.
    for (const name of [...Object.keys(manifest.dependencies), "typescript", "@types/node"]) {
      mkdirSync(dirname(join(app, "node_modules", name)), { recursive: true });
      symlinkSync(join(ROOT, "node_modules", name), join(app, "node_modules", name));
    }
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  });
  after(() => dir.remove());

  it("needs neither tsx nor esbuild at run time", () => {
    for (const dev of ["tsx", "esbuild", "typescript"]) assert.equal(manifest.dependencies[dev], undefined, dev);
    assert.ok(!existsSync(join(app, "node_modules", "tidings", "src")), "sources are not shipped");
  });

  it("typechecks a consumer of `tidings` and `tidings/client` with exactOptionalPropertyTypes, without skipLibCheck", async () => {
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          skipLibCheck: false,
          noEmit: true,
          types: ["node"],
        },
        files: ["consumer.ts"],
      }),
    );
    writeFileSync(
      join(app, "consumer.ts"),
      [
        'import { createServer, createBus, TidingsError, type TidingsOptionsInput, type ErrorCode } from "tidings";',
        'import { createClient, type ClientOptions, type BusMessage } from "tidings/client";',
        'const options: TidingsOptionsInput = { port: 0, databases: ["erp"] };',
        "const server = await createServer(options);",
        'const bus = createBus({ store: "memory:" });',
        'const code: ErrorCode = new TidingsError("TIDINGS_ERR_CONFIG").code;',
        'const client: ClientOptions = { url: "http://localhost:8080", db: "erp", token: async () => "a-token" };',
        "const seen: BusMessage[] = [];",
        "export { server, bus, code, client, seen, createClient };",
        "",
      ].join("\n"),
    );
    const tsc = join(app, "node_modules", "typescript", "bin", "tsc");
    await run(process.execPath, [tsc, "-p", "."], app);
  });

  it("runs the server, serves the prebuilt browser SDK, and runs the CLI", async () => {
    writeFileSync(
      join(app, "serve.mjs"),
      [
        'import { createServer } from "tidings";',
        'import * as client from "tidings/client";',
        'const server = await createServer({ store: "memory:", databases: ["erp"] });',
        "await server.listen(0, '127.0.0.1');",
        "const res = await fetch(`${server.url}/client.js`);",
        "const body = await res.text();",
        "await server.close();",
        "console.log(JSON.stringify({ status: res.status, type: res.headers.get('content-type'), exportsCreateClient: body.includes('createClient'), sdk: typeof client.createClient }));",
        "",
      ].join("\n"),
    );
    // The last line: the server's own log lines come before it.
    const out = JSON.parse((await run(process.execPath, ["serve.mjs"], app)).trim().split("\n").at(-1)!) as Record<string, unknown>;
    assert.deepEqual(out, { status: 200, type: "text/javascript; charset=utf-8", exportsCreateClient: true, sdk: "function" });
    const version = await run(process.execPath, [join(app, "node_modules", "tidings", "bin", "tidings.mjs"), "--version"], app);
    assert.equal(version.trim(), manifest.version);
  });
});

/** Runs a program to its end (at most two minutes); rejects with its output unless it exits 0. */
function run(command: string, args: readonly string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, timeout: 120_000, maxBuffer: 16 << 20, env: { ...process.env, npm_config_update_notifier: "false" } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(" ")} failed (${err.code ?? err.signal}): ${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}
