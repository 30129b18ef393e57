/**
 * Message ids are `<epoch>:<position>`. The epoch is fixed-width base36 time of the
 * store's creation, so a wiped and recreated store never hands out an id it gave before
 * (old cursors are recognised as foreign). Positions are fixed-width per engine so that
 * plain string comparison follows log order.
 */

const EPOCH_WIDTH = 9;
const SEQ_WIDTH = 16;

export function newEpoch(now: number = Date.now()): string {
  return now.toString(36).padStart(EPOCH_WIDTH, "0");
}

export function formatId(epoch: string, position: string): string {
  return `${epoch}:${position}`;
}

/** Position of a plain sequence number, for engines with one counter (memory, SQLite). */
export function seqPosition(seq: number | bigint): string {
  return seq.toString().padStart(SEQ_WIDTH, "0");
}

export interface ParsedId {
  readonly epoch: string;
  readonly position: string;
}

export function parseId(id: string): ParsedId | null {
  const colon = id.indexOf(":");
  if (colon !== EPOCH_WIDTH) return null;
  const epoch = id.slice(0, colon);
  const position = id.slice(colon + 1);
  if (!/^[0-9a-z]+$/.test(epoch) || position.length === 0) return null;
  return { epoch, position };
}

/** Parses a sequence position back (memory, SQLite); null when it is not one of ours. */
export function parseSeqId(id: string, epoch: string): number | null {
  const parsed = parseId(id);
  if (parsed === null || parsed.epoch !== epoch) return null;
  if (parsed.position.length !== SEQ_WIDTH || !/^[0-9]+$/.test(parsed.position)) return null;
  const seq = Number(parsed.position);
  return Number.isSafeInteger(seq) ? seq : null;
}

/**
 * Inserts `"message_id"` as the first key of a JSON object text. The payload never holds a
 * message_id of its own: the core strips any the publisher sent before serialising.
 */
export function withMessageId(payload: string, id: string): string {
  const head = `{"message_id":${JSON.stringify(id)}`;
  return payload === "{}" ? `${head}}` : `${head},${payload.slice(1)}`;
}
