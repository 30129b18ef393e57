import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type Database from "better-sqlite3";

interface InstanceRow {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
}

/**
 * This process's entry in the file's `instances` table, and whether any other process
 * that has the file open is still alive. A process killed with -9 leaves its row behind:
 * on this host a pid that no longer runs proves it dead and the row goes. A reused pid or
 * another host's row count as alive, which only costs waiting for leases, never a claim
 * taken from a live process.
 */
export class Instances {
  private readonly id = randomUUID();
  private readonly host = hostname();
  private readonly others;
  private readonly forget;

  constructor(private readonly sql: Database.Database) {
    sql
      .prepare<[string, string, number, number]>("INSERT INTO instances (id, host, pid, started_at) VALUES (?, ?, ?, ?)")
      .run(this.id, this.host, process.pid, Date.now());
    this.others = sql.prepare<[string], InstanceRow>("SELECT id, host, pid FROM instances WHERE id <> ?");
    this.forget = sql.prepare<[string]>("DELETE FROM instances WHERE id = ?");
  }

  anotherAlive(): boolean {
    let alive = false;
    for (const row of this.others.all(this.id)) {
      if (row.host === this.host && !pidRuns(row.pid)) this.forget.run(row.id);
      else alive = true;
    }
    return alive;
  }

  /** Removes this process's row; a failure (disk full) leaves it to be found dead later. */
  close(): void {
    try {
      this.forget.run(this.id);
    } catch {
      // the next process on this host sees the pid gone and removes the row
    }
  }
}

function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it runs, as another user.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
