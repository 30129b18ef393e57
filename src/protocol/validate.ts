import { TidingsError, type ErrorCode } from "./errors.js";
import type { Static, TSchema } from "@sinclair/typebox";
import { checkCompiled, formatIssues } from "./schema/check.js";

/**
 * Checks a request body or frame data against its schema (the ones in this folder), for
 * every wire alike: the error names each wrong field (`messages[2] has no "channel"
 * field`), and its code is the one the first wrong field's schema declares.
 * Checked per request, so with TypeBox's compiled checker.
 * `subject` names the whole: "The body" (HTTP), "The publish data" (WebSocket).
 */
export function parseWire<T extends TSchema>(schema: T, value: unknown, subject: string): Static<T> {
  const issues = checkCompiled(schema, value);
  if (issues.length === 0) return value as Static<T>;
  const code = (issues[0]!.code ?? "TIDINGS_ERR_REQUEST_INVALID") as ErrorCode;
  throw new TidingsError(code, formatIssues(issues, subject, "field"));
}
