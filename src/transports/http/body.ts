import type { IncomingMessage } from "node:http";
import { TidingsError } from "../../errors.js";

/**
 * Reads a JSON body up to `maxBytes`. A declared Content-Length over the limit is refused
 * before reading; a body that grows past it while streaming stops being read.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBytes) {
    req.resume();
    throw tooLarge(maxBytes);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      req.resume();
      throw tooLarge(maxBytes);
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks, size).toString("utf8");
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
