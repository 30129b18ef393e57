import { pino, type Logger } from "pino";

/** JSON logs on stdout; one logger per server, children per component. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: "tidings" } });
}
