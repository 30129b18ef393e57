/** What the SDK reads from a JWT without verifying it: who it is for and when it expires. */
export interface TokenFacts {
  readonly user: string | null;
  /** Milliseconds since the epoch, or null when the token says nothing (or is not a JWT). */
  readonly expiresAt: number | null;
}

/** Decodes a JWT's payload (base64url JSON). Browser-safe: `atob`, no Buffer. */
export function readToken(token: string): TokenFacts {
  const part = token.split(".")[1];
  if (part === undefined) return { user: null, expiresAt: null };
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes)) as { sub?: unknown; exp?: unknown };
    return {
      user: typeof payload.sub === "string" ? payload.sub : null,
      expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : null,
    };
  } catch {
    return { user: null, expiresAt: null };
  }
}
