import { createSecretKey, type KeyObject } from "node:crypto";
import { SignJWT, jwtVerify, errors as joseErrors } from "jose";
import { TidingsError } from "../errors.js";
import { ROLES, type Identity, type Role } from "../core/identity.js";

const ALGORITHM = "HS256";
const ISSUER = "tidings";
/** How far a token's `iat` may lie in the future: clocks of signers and servers drift a little. */
export const CLOCK_SKEW_SECONDS = 60;

export interface TokenClaims {
  readonly db: string;
  readonly user: string;
  readonly role?: Role;
  readonly channels?: readonly string[];
  readonly addresses?: readonly string[];
  /** Lifetime in seconds. @default 3600 */
  readonly ttlSeconds?: number;
}

const keys = new Map<string, KeyObject>();

/** One KeyObject per secret: handing jose raw bytes made it import the key on every verify. */
function key(secret: string): KeyObject {
  let k = keys.get(secret);
  if (k === undefined) {
    k = createSecretKey(Buffer.from(secret, "utf8"));
    keys.set(secret, k);
  }
  return k;
}

/** Signs a token for `tidings token` and for applications that hand tokens to their clients. */
export async function signToken(secret: string, claims: TokenClaims): Promise<string> {
  const role = claims.role ?? "subscriber";
  if (!ROLES.includes(role)) throw new TidingsError("TIDINGS_ERR_REQUEST_INVALID", `Unknown role ${role}.`);
  return new SignJWT({
    db: claims.db,
    role,
    ...(claims.channels?.length ? { channels: [...claims.channels] } : {}),
    ...(claims.addresses?.length ? { addresses: [...claims.addresses] } : {}),
  })
    .setProtectedHeader({ alg: ALGORITHM, typ: "JWT" })
    .setSubject(claims.user)
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (claims.ttlSeconds ?? 3600))
    .sign(key(secret));
}

/** Verifies a token; the algorithm is pinned, so `alg: none` and key-confusion tricks fail. */
export async function verifyToken(secret: string, token: string, via: Identity["via"] = "jwt"): Promise<Identity> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, key(secret), { algorithms: [ALGORITHM], issuer: ISSUER, requiredClaims: ["exp", "sub"] }));
  } catch (e) {
    if (e instanceof joseErrors.JWTExpired) throw new TidingsError("TIDINGS_ERR_AUTH_EXPIRED", undefined, { cause: e });
    throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "Invalid token.", { cause: e });
  }
  const { sub, db, role, channels, addresses, exp, iat } = payload;
  // A token "issued" in the future was made by a wrong clock or to outlive its lifetime.
  if (typeof iat === "number" && iat > Date.now() / 1000 + CLOCK_SKEW_SECONDS) {
    throw new TidingsError(
      "TIDINGS_ERR_AUTH_INVALID",
      `The token was issued in the future (iat ${iat}): check the clock of the machine that signed it.`,
    );
  }
  if (typeof sub !== "string" || sub.length === 0 || typeof db !== "string") {
    throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "The token lacks a subject or a database.");
  }
  if (typeof role !== "string" || !ROLES.includes(role as Role)) {
    throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "The token has no valid role.");
  }
  return {
    user: sub,
    db,
    role: role as Role,
    channels: stringList(channels),
    addresses: stringList(addresses),
    expiresAt: typeof exp === "number" ? exp * 1000 : null,
    via,
  };
}

function stringList(v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) {
    throw new TidingsError("TIDINGS_ERR_AUTH_INVALID", "The token's channels and addresses must be lists of strings.");
  }
  return v as string[];
}

