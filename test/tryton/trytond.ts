/**
 * The real Tryton server (Debian's `tryton-server`) for the Tryton tests and bench/tryton:
 * an initialised template database built once per trytond version and cloned per test
 * file, trytond as a server process on a free port, JSON-RPC login, and trytond code
 * publishing through `trytond.bus` (test/tryton/trytond_publish.py) with trytond's own
 * interpreter.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { BASE_URL, SERVER_URL } from "./helpers.js";

const TRYTOND = "/usr/bin/trytond";
const TRYTOND_ADMIN = "/usr/bin/trytond-admin";
export const ADAPTER_DIR = fileURLToPath(new URL("../../integrations/tryton/", import.meta.url));
const PUBLISH_PY = fileURLToPath(new URL("./trytond_publish.py", import.meta.url));
export const ADMIN_PASSWORD = "admin-secret-42";

/** trytond's interpreter: the first line of /usr/bin/trytond (`python3` on PATH may lack trytond). */
export const PYTHON: string | null = existsSync(TRYTOND) ? readFileSync(TRYTOND, "utf8").split("\n")[0]!.replace(/^#!\s*/, "").trim() : null;

/** Why the trytond tests cannot run here, or false. */
export const trytondSkip: string | false =
  PYTHON === null
    ? "trytond is not installed: apt-get install --no-install-recommends tryton-server python3-psycopg2"
    : false;

export function trytondVersion(): string {
  const r = spawnSync(PYTHON!, ["-c", "import trytond; print(trytond.__version__)"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`trytond's interpreter failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

/** trytond's `[database] uri`: the same server as the tests' PostgreSQL. */
const TRYTOND_URI = SERVER_URL.replace(/^postgres(ql)?:/, "postgresql:");

/** A trytond.conf in `dir`; `adapter` enables tidings_tryton.Bus. */
export function writeConfig(dir: string, opts: { port?: number; adapter?: boolean; extra?: string } = {}): string {
  mkdirSync(join(dir, "files"), { recursive: true });
  const path = join(dir, opts.adapter ? "trytond-adapter.conf" : "trytond.conf");
  writeFileSync(
    path,
    [
      "[database]",
      `uri = ${TRYTOND_URI}`,
      `path = ${join(dir, "files")}`,
      "[web]",
      `listen = 127.0.0.1:${opts.port ?? 8000}`,
      "[bus]",
      "allow_subscribe = True",
      ...(opts.adapter ? ["class = tidings_tryton.Bus"] : []),
      opts.extra ?? "",
    ].join("\n"),
  );
  return path;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): void {
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: "utf8", timeout: timeoutMs });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status} ${r.signal ?? ""}: ${r.stderr.slice(-2000)}`);
}

/**
 * The initialised template database of this trytond version (`trytond-admin --all`, about
 * 15 s, once): built under another name and renamed when complete, under an advisory lock
 * so that concurrent test files build it once.
 */
export async function ensureTemplate(): Promise<string> {
  const name = `tidings_trytond_tpl_${trytondVersion().replace(/\W/g, "_")}`;
  const sql = postgres(BASE_URL, { max: 1, onnotice: () => {} });
  try {
    const exists = async (): Promise<boolean> => (await sql`SELECT 1 FROM pg_database WHERE datname = ${name}`).length > 0;
    if (await exists()) return name;
    await sql`SELECT pg_advisory_lock(7469646974727974)`;
    try {
      if (await exists()) return name;
      const building = `${name}_building`;
      await sql`DROP DATABASE IF EXISTS ${sql(building)} WITH (FORCE)`;
      await sql`CREATE DATABASE ${sql(building)}`;
      const dir = mkdtempSync(join(tmpdir(), "tidings-trytond-tpl-"));
      try {
        writeFileSync(join(dir, "pass"), ADMIN_PASSWORD);
        run(TRYTOND_ADMIN, ["-c", writeConfig(dir), "-d", building, "--all", "--email", "admin@example.com"], { TRYTONPASSFILE: join(dir, "pass") }, 300_000);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      await sql`ALTER DATABASE ${sql(building)} RENAME TO ${sql(name)}`;
      return name;
    } finally {
      await sql`SELECT pg_advisory_unlock(7469646974727974)`;
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** A fresh Tryton database cloned from the template (admin/ADMIN_PASSWORD is user 1). */
export async function cloneTemplate(db: string): Promise<void> {
  const template = await ensureTemplate();
  const sql = postgres(BASE_URL, { max: 1, onnotice: () => {} });
  try {
    await sql`CREATE DATABASE ${sql(db)} TEMPLATE ${sql(template)}`;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** trytond serving on a free port; `stop()` checks it ran until stopped. */
export class TrytondServer {
  /** The server process (bench/tryton reads its CPU time). */
  readonly pid: number;
  private exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private stderr = "";

  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
  ) {
    this.pid = child.pid!;
    child.stderr!.on("data", (c: Buffer) => (this.stderr = (this.stderr + c.toString()).slice(-4000)));
    child.on("exit", (code, signal) => (this.exited = { code, signal }));
  }

  /** `extra`: more lines of trytond.conf's [bus] section. */
  static async start(dir: string, opts: { adapter?: boolean; extra?: string } = {}): Promise<TrytondServer> {
    const port = await freePort();
    const conf = writeConfig(dir, { port, ...opts });
    const child = spawn(TRYTOND, ["-c", conf], { env: { ...process.env, PYTHONPATH: ADAPTER_DIR }, stdio: ["ignore", "ignore", "pipe"] });
    const server = new TrytondServer(`http://127.0.0.1:${port}`, child);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (server.exited) throw new Error(`trytond exited ${JSON.stringify(server.exited)}: ${server.stderr}`);
      try {
        await fetch(`${server.url}/`, { method: "POST", body: "{}" });
        return server;
      } catch {
        if (Date.now() > deadline) throw new Error(`trytond did not answer within 30 s: ${server.stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async stop(): Promise<void> {
    if (this.exited) throw new Error(`trytond had exited on its own: ${JSON.stringify(this.exited)} ${this.stderr}`);
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()));
    this.child.kill("SIGTERM");
    await gone;
    if (this.exited!.signal !== "SIGTERM" && this.exited!.code !== 0) throw new Error(`trytond stopped badly: ${JSON.stringify(this.exited)}`);
  }
}

export interface Session {
  readonly login: string;
  readonly userId: number;
  readonly key: string;
  /** `Authorization` header value: what Tryton clients send. */
  readonly header: string;
}

/** A JSON-RPC call to trytond: `POST /<db>/`. */
export async function rpc(baseUrl: string, db: string, method: string, params: unknown[], session?: Session): Promise<unknown> {
  const res = await fetch(`${baseUrl}/${db}/`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(session ? { authorization: session.header } : {}) },
    body: JSON.stringify({ id: 1, method, params }),
  });
  const body = (await res.json()) as { result?: unknown; error?: unknown };
  if (res.status !== 200 || body.error !== undefined && body.error !== null) throw new Error(`${method}: ${res.status} ${JSON.stringify(body.error)}`);
  return body.result;
}

/** Logs in through trytond's JSON-RPC, as every Tryton client does. */
export async function login(baseUrl: string, db: string, user: string, password: string): Promise<Session> {
  const [userId, key] = (await rpc(baseUrl, db, "common.db.login", [user, { password }, "en"])) as [number, string];
  return { login: user, userId, key, header: `Session ${Buffer.from(`${user}:${userId}:${key}`).toString("base64")}` };
}

/** A Tryton user created by admin through JSON-RPC; returns its session. */
export async function createUser(baseUrl: string, db: string, admin: Session, user: string): Promise<Session> {
  const password = `${user}-secret-42x`;
  await rpc(baseUrl, db, "model.res.user.create", [[{ name: user, login: user, password }], {}], admin);
  return login(baseUrl, db, user, password);
}

export interface TrytondTransaction {
  readonly user?: number;
  readonly context?: Record<string, unknown>;
  readonly rollback?: boolean;
  readonly actions: ReadonlyArray<
    | { notify: { title: string; body?: string | null; priority?: number; user?: number; client?: string } }
    | { publish: { channel: string; message: Record<string, unknown> } }
  >;
}

/** trytond code publishing: one long-lived interpreter, one Tryton transaction per `run`. */
export class TrytondPublisher {
  private readonly lines: Interface;
  private readonly waiting: Array<(line: string) => void> = [];
  private exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderr = "";

  private constructor(private readonly child: ChildProcess) {
    this.lines = createInterface({ input: child.stdout! });
    this.lines.on("line", (line) => this.waiting.shift()?.(line));
    child.stderr!.on("data", (c: Buffer) => (this.stderr = (this.stderr + c.toString()).slice(-4000)));
    this.exit = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal })));
  }

  /** `adapter`: trytond configured with `[bus] class = tidings_tryton.Bus`. */
  static async start(dir: string, db: string, opts: { adapter?: boolean } = {}): Promise<TrytondPublisher> {
    const conf = writeConfig(dir, opts);
    const child = spawn(PYTHON!, [PUBLISH_PY, conf, db], { env: { ...process.env, PYTHONPATH: ADAPTER_DIR }, stdio: ["pipe", "pipe", "pipe"] });
    const p = new TrytondPublisher(child);
    const ready = await p.next(30_000);
    const want = opts.adapter ? "ready tidings_tryton" : "ready trytond.bus";
    if (ready !== want) throw new Error(`publisher said ${JSON.stringify(ready)}, not ${want}: ${p.stderr}`);
    return p;
  }

  private next(ms: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`trytond publisher silent for ${ms} ms: ${this.stderr}`)), ms);
      this.waiting.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  }

  async run(tx: TrytondTransaction): Promise<void> {
    const answer = this.next(15_000);
    this.child.stdin!.write(`${JSON.stringify(tx)}\n`);
    const line = await answer;
    if (line !== "ok") throw new Error(`trytond publish failed: ${line}`);
  }

  async close(): Promise<void> {
    this.child.stdin!.end();
    const { code, signal } = await this.exit;
    this.lines.close();
    if (code !== 0) throw new Error(`trytond publisher exited ${code} ${signal ?? ""}: ${this.stderr}`);
  }
}
