import type { IncomingMessage } from "node:http";
import { TidingsError } from "../../errors.js";
import type { BodyGuard } from "./body-guard.js";

/** Whose body it is, for the body deadline and the per-user cap of bytes being received. */
export interface BodyOwner {
  readonly guard: BodyGuard;
  /** The user's key (database and user). */
  readonly key: string;
}

/**
 * Reads a JSON body up to `maxBytes`. A declared Content-Length over the limit is refused
 * before reading; a body that grows past it while streaming stops being read. The body must
 * be declared `application/json`: a page of another site can send `text/plain`, a form or
 * `multipart/form-data` without asking CORS first, never JSON (cross-site request forgery).
 * Tryton's `POST /<db>/bus` does not come here: its clients are served as they are.
 */
export function readJsonBody(req: IncomingMessage, maxBytes: number, owner?: BodyOwner): Promise<unknown> {
  const type = req.headers["content-type"];
  if (!isJsonContentType(type)) {
    req.resume();
    const given = type === undefined ? "none was given" : `not ${JSON.stringify(type.slice(0, 100))}`;
    return Promise.reject(new TidingsError("TIDINGS_ERR_REQUEST_CONTENT_TYPE", `The body must be sent with Content-Type: application/json, ${given}.`));
  }
  return new Promise((resolve, reject) =>
    onBodyText(req, maxBytes, {
      text(text) {
        try {
          resolve(parseJson(text));
        } catch (e) {
          reject(e);
        }
      },
      fail: reject,
    }, owner),
  );
}

/** Where `onBodyText` hands the body, or why there is none. */
export interface BodySink {
  text(text: string): void;
  fail(error: TidingsError): void;
}

/**
 * The body as text, to a sink: the long-poll answers from inside `text` without a promise
 * in between. Plain events, not an async iterator: this runs once per long-poll and the
 * iterator's machinery showed up in profiles.
 */
export function onBodyText(req: IncomingMessage, maxBytes: number, sink: BodySink, owner?: BodyOwner): void {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBytes) {
    req.resume();
    sink.fail(tooLarge(maxBytes));
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  // The listeners stay until the request is gone: after "end", "error" or a refusal nothing
  // else arrives that `done` does not ignore.
  let done = false;
  const refuse = (error: TidingsError): void => {
    if (done) return;
    done = true;
    watch?.end();
    req.resume();
    sink.fail(error);
  };
  // A body whose client stops sending is refused after bodyTimeoutMs, not the request timeout.
  const watch = owner?.guard.watch(owner.key, refuse);
  req.on("data", (chunk: Buffer) => {
    if (done) return;
    size += chunk.length;
    if (size > maxBytes) return refuse(tooLarge(maxBytes));
    const over = watch?.grew(chunk.length) ?? null;
    if (over !== null) return refuse(over);
    chunks.push(chunk);
  });
  req.on("end", () => {
    if (done) return;
    done = true;
    watch?.end();
    sink.text(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks, size).toString("utf8"));
  });
  // An aborted request is destroyed with an "aborted" error (ECONNRESET).
  req.on("error", (e: Error) => refuse(new TidingsError("TIDINGS_ERR_REQUEST_INVALID", "The request body could not be read.", { cause: e })));
  if (watch !== undefined) req.once("close", () => watch.end());
}

/** `application/json`, any case, with parameters (`; charset=utf-8`) or none. */
function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const semicolon = header.indexOf(";");
  return (semicolon < 0 ? header : header.slice(0, semicolon)).trim().toLowerCase() === "application/json";
}

/** JSON.parse with the errors a client is told. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    if (text.trim().length === 0) {
      throw new TidingsError("TIDINGS_ERR_REQUEST_JSON", "The body is empty; a JSON object is expected.");
    }
    throw new TidingsError("TIDINGS_ERR_REQUEST_JSON", `The body is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

function tooLarge(maxBytes: number): TidingsError {
  return new TidingsError("TIDINGS_ERR_REQUEST_TOO_LARGE", `The request body may have at most ${maxBytes} bytes.`, {
    details: { maxBytes },
  });
}
