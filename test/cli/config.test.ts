import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULTS, resolveOptions } from "../../src/options.js";
import { loadOptionsInput, OPTION_SPECS } from "../../src/cli/config.js";
import { TidingsError } from "../../src/errors.js";
import { post, runCli, runCliOk, serve, tempDir } from "./cli-process.js";

describe("configuration: flags > TIDINGS_* > config file > defaults", () => {
  const dir = tempDir();
  after(() => dir.remove());
  const file = (name: string, doc: unknown): string => {
    const path = join(dir.path, name);
    writeFileSync(path, JSON.stringify(doc));
    return path;
  };

  it("takes each option from the highest layer that sets it", () => {
    const config = file("a.json", { port: 1, host: "10.0.0.1", pollTimeoutMs: 1000, ws: { maxPayload: 1000, pingIntervalMs: 5000 } });
    const input = loadOptionsInput({
      flags: { config, port: "3" },
      env: { TIDINGS_PORT: "2", TIDINGS_HOST: "0.0.0.0", TIDINGS_WS_MAX_PAYLOAD: "2KiB" },
    });
    const o = resolveOptions(input);
    assert.deepEqual(
      [o.port, o.host, o.pollTimeoutMs, o.ws.maxPayload, o.ws.pingIntervalMs, o.ws.maxBufferedBytes],
      [3, "0.0.0.0", 1000, 2048, 5000, DEFAULTS.ws.maxBufferedBytes],
    );
    assert.equal(o.store, "sqlite:./data/tidings.db");
  });

  it("reads TIDINGS_CONFIG, and --config over it", () => {
    const a = file("env.json", { tailSize: 5 });
    const b = file("flag.json", { tailSize: 6 });
    assert.equal(loadOptionsInput({ env: { TIDINGS_CONFIG: a } }).tailSize, 5);
    assert.equal(loadOptionsInput({ flags: { config: b }, env: { TIDINGS_CONFIG: a } }).tailSize, 6);
  });

  it("parses durations, sizes, lists and JSON", () => {
    const o = resolveOptions(
      loadOptionsInput({
        env: {
          TIDINGS_POLL_TIMEOUT: "5m",
          TIDINGS_CURSORLESS_WINDOW: "1500ms",
          TIDINGS_MAX_BODY_BYTES: "2MiB",
          TIDINGS_DATABASES: "erp, crm",
          TIDINGS_CORS_ORIGINS: "https://a.example,https://b.example",
          TIDINGS_ACCESS_RULES: '[{"channels":"chat:*"}]',
          TIDINGS_COMMANDS_DEFAULT_DEADLINE: "2h",
          TIDINGS_DATA_DIR: "/var/lib/tidings",
        },
      }),
    );
    assert.equal(o.pollTimeoutMs, 300_000);
    assert.equal(o.noCursorWindowMs, 1500);
    assert.equal(o.maxBodyBytes, 2 * 1024 * 1024);
    assert.deepEqual(Object.keys(o.databases), ["erp", "crm"]);
    assert.deepEqual(o.corsOrigins, ["https://a.example", "https://b.example"]);
    assert.deepEqual(o.accessRules, [{ channels: "chat:*" }]);
    assert.equal(o.commands.defaultDeadlineMs, 7_200_000);
    assert.equal(o.store, "sqlite:/var/lib/tidings/tidings.db");
    const fromFile = loadOptionsInput({
      flags: { config: file("d.json", { pollTimeoutMs: "30s", databases: { erp: { retention: { maxAgeHours: 2 } } } }) },
      env: {},
    });
    assert.equal(fromFile.pollTimeoutMs, 30_000);
    assert.equal(resolveOptions(fromFile).databases.erp!.retention.maxAgeHours, 2);
  });

  it("rejects ambiguous or invalid values with a sentence naming the source", () => {
    const fails = (fn: () => unknown, re: RegExp) =>
      assert.throws(fn, (e: unknown) => e instanceof TidingsError && e.code === "TIDINGS_ERR_CONFIG" && re.test(e.message));
    fails(() => loadOptionsInput({ env: { TIDINGS_POLL_TIMEOUT: "300" } }), /TIDINGS_POLL_TIMEOUT: "300" needs a unit; write 300s or 300ms/);
    fails(() => loadOptionsInput({ flags: { port: "eighty" }, env: {} }), /--port: "eighty" is not a non-negative integer/);
    fails(() => loadOptionsInput({ env: { TIDINGS_LOG_LEVEL: "loud" } }), /TIDINGS_LOG_LEVEL: log level must be one of/);
    fails(() => loadOptionsInput({ flags: { config: file("typo.json", { pollTimeout: 5 }) }, env: {} }), /unknown option "pollTimeout" \(did you mean "pollTimeoutMs"\?\)/);
    fails(() => loadOptionsInput({ flags: { config: join(dir.path, "missing.json") }, env: {} }), /Cannot read the config file/);
  });

  it("refuses each unknown key and wrong type of a config file with its path, and serve exits 2", async () => {
    const typo = file("rule-typo.json", { accessRules: [{ channel: "chat:*" }] });
    const off = file("bus-no.json", { databases: { app: { bus: "no" } } });
    const both = file("both.json", { accessRules: [{ channels: "a:*", user: ["7"] }], databases: { app: { bus: "no", retention: { maxAgeHours: -1 } } }, ws: { maxPayload: 1.5 } });
    const message = (path: string): string => {
      try {
        loadOptionsInput({ flags: { config: path }, env: {} });
      } catch (e) {
        assert.ok(e instanceof TidingsError && e.code === "TIDINGS_ERR_CONFIG");
        return e.message;
      }
      return assert.fail(`${path} was accepted`);
    };
    assert.equal(message(typo), `${typo}: accessRules[0] has no "channels" field; unknown option "accessRules[0].channel" (did you mean "channels"?).`);
    assert.equal(message(off), `${off}: databases.app.bus must be true or false, got "no".`);
    assert.equal(
      message(both),
      `${both}: unknown option "accessRules[0].user" (did you mean "users"?); databases.app.bus must be true or false, got "no"; ` +
        "databases.app.retention.maxAgeHours must be a number of at least 0, got -1; ws.maxPayload must be a whole number, got 1.5.",
    );
    for (const path of [typo, off]) {
      const started = await runCli(["serve", "--config", path, "--store", "memory:", "--port", "0"]);
      assert.equal(started.code, 2, started.stderr);
      assert.match(started.stderr, path === typo ? /accessRules\[0\]\.channel/ : /databases\.app\.bus must be true or false/);
    }
  });

  it("refuses wrong types from an embedder, a flag or a variable with the option's path", () => {
    const fails = (fn: () => unknown, message: string) =>
      assert.throws(fn, (e: unknown) => e instanceof TidingsError && e.code === "TIDINGS_ERR_CONFIG" && e.message === message);
    fails(() => resolveOptions({ databases: { app: { bus: "no" as never } } }), 'databases.app.bus must be true or false, got "no".');
    fails(() => resolveOptions({ port: 70_000 }), "port must be a number from 0 to 65535, got 70000.");
    fails(() => resolveOptions({ logLevel: "loud" as never }), 'logLevel must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "loud".');
    fails(() => loadOptionsInput({ env: { TIDINGS_ACCESS_RULES: '[{"channel":"x"}]' } }), 'TIDINGS_ACCESS_RULES: accessRules[0] has no "channels" field; unknown option "accessRules[0].channel" (did you mean "channels"?).');
    fails(() => loadOptionsInput({ flags: { wsMaxPayload: "0" }, env: {} }), "--ws-max-payload: ws.maxPayload must be a positive number, got 0.");
  });

  it("reaches every option of TidingsOptions", () => {
    const leaves: string[] = ["store", "secret"];
    const walk = (o: Record<string, unknown>, prefix: string): void => {
      for (const [k, v] of Object.entries(o)) {
        if (k !== "databases" && typeof v === "object" && v !== null && !Array.isArray(v)) walk(v as Record<string, unknown>, `${prefix}${k}.`);
        else leaves.push(prefix + k);
      }
    };
    walk(DEFAULTS as unknown as Record<string, unknown>, "");
    assert.deepEqual(OPTION_SPECS.map((s) => s.key).sort(), leaves.sort());
    assert.equal(new Set(OPTION_SPECS.map((s) => s.flag)).size, OPTION_SPECS.length);
    for (const s of OPTION_SPECS) assert.ok(!s.flag.startsWith("--no-"), `${s.flag} would read as a negation`);
  });

  it("serve applies the precedence end to end", async (t) => {
    const secret = "precedence-secret-precedence-secret-0123";
    const config = file("serve.json", { databases: ["filedb"], secret, logLevel: "info" });
    const env = { TIDINGS_CONFIG: config, TIDINGS_DATABASES: "envdb", TIDINGS_STORE: "memory:" };
    const fromEnv = await serve([], env);
    t.after(() => fromEnv.stop("SIGKILL"));
    const fromFlag = await serve(["--databases", "flagdb"], env);
    t.after(() => fromFlag.stop("SIGKILL"));
    const publish = async (url: string, db: string) => {
      const token = await runCliOk(["token", "--secret", secret, "--db", db, "--user", "1", "--role", "publisher"]);
      return (await post(`${url}/${db}/publish`, token, { channel: "c", message: { type: "t" } })).status;
    };
    assert.deepEqual([await publish(fromEnv.url, "envdb"), await publish(fromEnv.url, "filedb")], [200, 404]);
    assert.deepEqual([await publish(fromFlag.url, "flagdb"), await publish(fromFlag.url, "envdb")], [200, 404]);
    assert.equal(fromEnv.logs.find((l) => l.msg === "tidings listening")!.engine, "memory");
  });
});
