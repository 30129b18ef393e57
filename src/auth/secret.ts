import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TidingsError } from "../errors.js";

const SECRET_FILE = "secret";

/** The configured secret, else the one in the data directory; `create` makes one there if missing. */
export function loadSecret(configured: string | undefined, dataDir: string, create: boolean): string | null {
  if (configured !== undefined && configured.length > 0) return configured;
  const path = join(dataDir, SECRET_FILE);
  const existing = readSecretFile(path);
  if (existing !== null || !create) return existing;
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString("base64url");
  // Written whole under a private name, then linked into place: the link appears with its
  // content (a reader never sees the empty file an open-then-write leaves for a moment), and
  // fails if another instance linked its own first, whose secret we then share.
  const temp = join(dataDir, `.${SECRET_FILE}.${process.pid}.${randomBytes(6).toString("hex")}`);
  writeFileSync(temp, `${secret}\n`, { mode: 0o600, flag: "wx" });
  try {
    linkSync(temp, path);
    return secret;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return readSecretFile(path) ?? emptySecretFile(path);
    // A filesystem without hard links: exclusive create, then write (the old, racier way).
    if (code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP") return createInPlace(path, secret);
    throw e;
  } finally {
    rmSync(temp, { force: true });
  }
}

function createInPlace(path: string, secret: string): string {
  try {
    writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: "wx" });
    return secret;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return readSecretFile(path) ?? emptySecretFile(path);
    throw e;
  }
}

/** The secret in the file, null when there is no file; an empty file is an error, never an empty secret. */
function readSecretFile(path: string): string | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
  const secret = text.trim();
  return secret.length > 0 ? secret : emptySecretFile(path);
}

function emptySecretFile(path: string): never {
  throw new TidingsError(
    "TIDINGS_ERR_CONFIG",
    `The secret file ${path} is empty (left by an interrupted start?): delete it so that \`tidings serve\` makes a new one, or pass --secret.`,
  );
}
