import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const SECRET_FILE = "secret";

/** The configured secret, else the one in the data directory; `create` makes one there if missing. */
export function loadSecret(configured: string | undefined, dataDir: string, create: boolean): string | null {
  if (configured !== undefined && configured.length > 0) return configured;
  const path = join(dataDir, SECRET_FILE);
  try {
    const s = readFileSync(path, "utf8").trim();
    if (s.length > 0) return s;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (!create) return null;
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString("base64url");
  // wx: two instances starting at once must not overwrite each other's secret.
  try {
    writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: "wx" });
    return secret;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return readFileSync(path, "utf8").trim();
    throw e;
  }
}
