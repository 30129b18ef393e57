export type Role = "subscriber" | "publisher" | "admin";
export const ROLES: readonly Role[] = ["subscriber", "publisher", "admin"];

/** Who is calling, as established by a token, a Tryton session or a cookie. */
export interface Identity {
  /** The user id (Tryton's integer id as a string, or any application user key). */
  readonly user: string;
  /** The database the credentials are for; "*" only for admin tokens valid on every database. */
  readonly db: string;
  readonly role: Role;
  /** Extra channel patterns this caller may read (from its token). */
  readonly channels: readonly string[];
  /** Command address patterns this caller may register as (from its token). */
  readonly addresses: readonly string[];
  /** When the credentials stop being valid (ms since epoch), or null. */
  readonly expiresAt: number | null;
  readonly via: "jwt" | "session" | "cookie";
}

export function canPublish(identity: Identity): boolean {
  return identity.role === "publisher" || identity.role === "admin";
}
