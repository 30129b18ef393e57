/** What log.ts and commands.ts use: keys, scripts and plain commands on the main connection. */
export interface Conn {
  /** `<prefix><name>` for store-wide keys (db null), else `<prefix>{<db>}:<name>`. */
  key(db: string | null, name: string): string;
  script(name: string, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>;
  command(name: string, args: (string | number)[]): Promise<unknown>;
  /** The store's epoch (re-read after every reconnect: a wiped Redis gets a new one). */
  epoch(): Promise<string>;
}
