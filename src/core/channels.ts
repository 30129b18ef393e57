import { TidingsError } from "../errors.js";

export const DB_NAME = /^[A-Za-z0-9_.-]{1,63}$/;
export const MAX_CHANNEL_LENGTH = 255;
// Control characters would corrupt logs and SSE framing; everything else is the application's choice.
const CHANNEL_FORBIDDEN = /[\u0000-\u001f\u007f]/;

export function isValidDbName(db: string): boolean {
  return DB_NAME.test(db);
}

export function validateChannel(channel: unknown): string {
  if (typeof channel !== "string") {
    throw new TidingsError("TIDINGS_ERR_CHANNEL_INVALID", "A channel must be a string.");
  }
  if (channel.length === 0 || channel.length > MAX_CHANNEL_LENGTH) {
    throw new TidingsError(
      "TIDINGS_ERR_CHANNEL_INVALID",
      `A channel must have 1 to ${MAX_CHANNEL_LENGTH} characters.`,
      { details: { channel: channel.slice(0, 64) } },
    );
  }
  if (CHANNEL_FORBIDDEN.test(channel)) {
    throw new TidingsError("TIDINGS_ERR_CHANNEL_INVALID", "A channel must not contain control characters.", {
      details: { channel: channel.slice(0, 64) },
    });
  }
  return channel;
}

/** Validates a list of channels from a request; duplicates are removed, order kept. */
export function validateChannelList(channels: unknown, max: number): string[] {
  if (!Array.isArray(channels)) {
    throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", "channels must be a list of strings.");
  }
  if (channels.length > max) {
    throw new TidingsError("TIDINGS_ERR_CHANNEL_TOO_MANY", `At most ${max} channels per subscription.`, {
      details: { max },
    });
  }
  const out = new Set<string>();
  for (const c of channels) {
    if (typeof c !== "string") {
      throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", "channels must be a list of strings.");
    }
    out.add(validateChannel(c));
  }
  return [...out];
}

const patternCache = new Map<string, RegExp>();

/**
 * Channel patterns: `*` matches any run of characters, `{user}` the caller's user id.
 * Everything else is literal.
 */
export function matchesPattern(pattern: string, channel: string, user: string): boolean {
  const key = `${pattern}\u0000${user}`;
  let re = patternCache.get(key);
  if (re === undefined) {
    const source = pattern
      .split("{user}")
      .map((part) => part.split("*").map(escapeRegExp).join(".*"))
      .join(escapeRegExp(user));
    re = new RegExp(`^${source}$`, "s");
    if (patternCache.size > 10_000) patternCache.clear();
    patternCache.set(key, re);
  }
  return re.test(channel);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
