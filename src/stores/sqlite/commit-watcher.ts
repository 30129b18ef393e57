import type Database from "better-sqlite3";

/** How often the file is checked for other processes' commits; delivery lags them by about this much. */
export const DEFAULT_WATCH_INTERVAL_MS = 25;

interface LogRow {
  readonly db: string;
  readonly last_seq: number;
}

/**
 * Tells which databases other processes appended to on the same SQLite file (a second
 * `tidings serve`, an application's `createBus`). `PRAGMA data_version` changes only when
 * another connection commits, and costs a read of shared memory, so a single process pays
 * a few microseconds per tick; only when it changed is the small `logs` table compared
 * with what was last seen. A report is a hint: readers re-read the log after their head.
 * This process's own appends are reported at the next tick too, once per database however
 * many there were.
 */
export class CommitWatcher {
  private readonly dataVersion;
  private readonly lastSeqs;
  private version: number;
  private readonly seen = new Map<string, number>();
  private readonly own = new Set<string>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    sql: Database.Database,
    intervalMs: number,
    private readonly report: (db: string) => void,
  ) {
    this.dataVersion = sql.prepare<[], number>("PRAGMA data_version").pluck();
    this.lastSeqs = sql.prepare<[], LogRow>("SELECT db, last_seq FROM logs");
    this.version = this.dataVersion.get()!;
    for (const r of this.lastSeqs.all()) this.seen.set(r.db, r.last_seq);
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
  }

  /** This process appended to `db`. */
  appended(db: string): void {
    this.own.add(db);
  }

  private tick(): void {
    const changed = new Set(this.own);
    this.own.clear();
    try {
      const version = this.dataVersion.get()!;
      if (version !== this.version) {
        this.version = version;
        for (const r of this.lastSeqs.all()) {
          if (this.seen.get(r.db) === r.last_seq) continue;
          this.seen.set(r.db, r.last_seq);
          changed.add(r.db);
        }
      }
    } catch {
      // The file could not be read this time (I/O error, disk full): `version` is unchanged,
      // so the next tick sees the same commits again. Appends and reads report such errors.
    }
    for (const db of changed) this.report(db);
  }

  close(): void {
    clearInterval(this.timer);
  }
}
