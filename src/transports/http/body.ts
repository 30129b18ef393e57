import type { IncomingMessage } from "node:http";
import { TidingsError } from "../../errors.js";

/**
 * Reads a JSON body up to `maxBytes`. A declared Content-Length over the limit is refused
 * before reading; a body that grows past it while streaming stops being read. Plain
 * events, not an async iterator: this runs once per long-poll and the iterator's
 * machinery showed up in profiles.
 */
export function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBytes) {
    req.resume();
    return Promise.reject(tooLarge(maxBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        cleanup();
        req.resume();
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      try {
        resolve(parseJson(chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks, size).toString("utf8")));
      } catch (e) {
        reject(e);
      }
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(new TidingsError("TIDINGS_ERR_REQUEST_INVALID", "The request body could not be read.", { cause: e }));
    };
    const onAborted = (): void => onError(new Error("request aborted"));
    function cleanup(): void {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("aborted", onAborted);
    }
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("aborted", onAborted);
  });
}

function parseJson(text: string): unknown {
  if (text.trim().length === 0) {
    throw new TidingsError("TIDINGS_ERR_REQUEST_JSON", "The body is empty; a JSON object is expected.");
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new TidingsError("TIDINGS_ERR_REQUEST_JSON", `The body is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

function tooLarge(maxBytes: number): TidingsError {
  return new TidingsError("TIDINGS_ERR_REQUEST_TOO_LARGE", `The request body may have at most ${maxBytes} bytes.`, {
    details: { maxBytes },
  });
}
