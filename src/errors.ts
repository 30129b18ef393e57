// The error catalogue (src/protocol/errors.ts), as the server's modules import it.
export * from "./protocol/errors.js";
