/** An `Authorization` header split into its scheme (lower case) and value (trimmed). */
export interface AuthorizationHeader {
  readonly scheme: string;
  readonly value: string;
}

/**
 * The one parser of `Authorization` headers (`Bearer <JWT>`, Tryton's `Session …`):
 * null when the header is absent or empty. Schemes are case-insensitive (RFC 9110 §11.1).
 */
export function parseAuthorization(header: string | undefined): AuthorizationHeader | null {
  if (header === undefined || header.length === 0) return null;
  const space = header.indexOf(" ");
  if (space <= 0) return { scheme: header.toLowerCase(), value: "" };
  return { scheme: header.slice(0, space).toLowerCase(), value: header.slice(space + 1).trim() };
}

/** The token of a `Bearer` header, or null for any other header or none. */
export function bearerToken(header: string | undefined): string | null {
  const h = parseAuthorization(header);
  return h !== null && h.scheme === "bearer" && h.value.length > 0 ? h.value : null;
}
