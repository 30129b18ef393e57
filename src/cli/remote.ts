import { Agent, request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest, Agent as HttpsAgent } from "node:https";
import type { Command } from "commander";
import { loadSecret } from "../auth/secret.js";
import { signToken } from "../auth/tokens.js";
import { resolveOptions, type TidingsOptions } from "../options.js";
import { addSecretOptions, loadOptionsInput } from "./config.js";

/**
 * What the client commands (publish, notify, tail) share: where the server is, which
 * database, and the credentials — a given token, or an admin token minted from the local
 * secret (--secret, TIDINGS_SECRET, or the file `serve` created in the data directory).
 */
export interface Remote {
  readonly url: string;
  readonly db: string;
  readonly token: string;
  readonly options: TidingsOptions;
}

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** Adds --url, --db, --token and the secret-finding flags. */
export function addRemoteOptions(cmd: Command): Command {
  cmd
    .option("--url <url>", "server base URL [TIDINGS_URL; default: http://<host>:<port> of the configuration]")
    .option("--db <name>", "database [TIDINGS_DB; default: the first configured database]")
    .option("--token <jwt>", "credentials [TIDINGS_TOKEN; default: an admin token minted from the local secret]");
  return addSecretOptions(cmd);
}

export async function resolveRemote(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Promise<Remote> {
  const options = resolveOptions(loadOptionsInput({ flags, env }));
  const str = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);
  const host = options.host === "0.0.0.0" || options.host === "::" ? "127.0.0.1" : options.host;
  const url = (str(flags.url) ?? str(env.TIDINGS_URL) ?? `http://${host.includes(":") ? `[${host}]` : host}:${options.port}`).replace(/\/+$/, "");
  const db = str(flags.db) ?? str(env.TIDINGS_DB) ?? Object.keys(options.databases).find((d) => d !== "*");
  if (db === undefined) throw new CliError("No database: pass --db or set TIDINGS_DB.", 2);
  let token = str(flags.token) ?? str(env.TIDINGS_TOKEN);
  if (token === undefined) {
    const secret = loadSecret(options.secret, options.dataDir, false);
    if (secret === null) {
      throw new CliError(
        `No credentials: pass --token (see \`tidings token\`), or --secret / TIDINGS_SECRET, or run where ${options.dataDir}/secret exists.`,
        2,
      );
    }
    // Short-lived: it only has to outlive this command (a tail renews nothing, so give it a day).
    token = await signToken(secret, { db, user: "tidings-cli", role: "admin", ttlSeconds: 86_400 });
  }
  return { url, db, token, options };
}

export interface JsonReply {
  readonly status: number;
  readonly body: unknown;
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });
const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 4 });

/**
 * One JSON request, answered with the parsed JSON. node:http rather than fetch: a
 * long-poll or a `--wait` lasts the server's poll timeout (5 min by default), which is
 * fetch's own header timeout.
 */
export function requestJson(
  method: "GET" | "POST",
  url: string,
  token: string,
  body?: unknown,
  signal?: AbortSignal,
): Promise<JsonReply> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const target = new URL(url);
  const secure = target.protocol === "https:";
  return new Promise((resolve, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(
      target,
      {
        method,
        agent: secure ? httpsAgent : agent,
        headers: {
          authorization: `Bearer ${token}`,
          ...(text !== undefined ? { "content-type": "application/json", "content-length": Buffer.byteLength(text) } : {}),
        },
        ...(signal ? { signal } : {}),
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const raw = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = raw;
          try {
            parsed = raw.length > 0 ? JSON.parse(raw) : null;
          } catch {
            // not JSON (a proxy's error page): keep the text for the message
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on("error", (e) => reject(signal?.aborted ? e : new CliError(`Cannot reach ${target.origin}: ${e.message}`)));
    req.end(text);
  });
}

export function postJson(url: string, token: string, body: unknown, signal?: AbortSignal): Promise<JsonReply> {
  return requestJson("POST", url, token, body, signal);
}

/** The error sentence of a non-2xx answer: the server's stable code and message. */
export function replyError(reply: JsonReply): CliError {
  const b = reply.body as { error?: { code?: unknown; message?: unknown } } | null;
  const code = typeof b?.error?.code === "string" ? b.error.code : `HTTP ${reply.status}`;
  const message = typeof b?.error?.message === "string" ? b.error.message : String(reply.body).slice(0, 200);
  return new CliError(`${code}: ${message}`);
}

/** Closes kept-alive sockets so the process can exit. */
export function closeConnections(): void {
  agent.destroy();
  httpsAgent.destroy();
}
