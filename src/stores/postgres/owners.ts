import type postgres from "postgres";
import type { ClaimPolicy } from "../store.js";

/** Ownership claims of `client:<id>` channels (the contract is `Store.claimOwner`); SQL in sql/005. */
export class PostgresOwners {
  private readonly t: postgres.Helper<string>;

  constructor(private readonly sql: postgres.Sql, schema: string) {
    this.t = sql(schema);
  }

  async claim(db: string, key: string, owner: string, { now, ttlMs, maxPerOwner }: ClaimPolicy): Promise<string> {
    const [row] = await this.sql<{ owner: string }[]>`
      SELECT ${this.t}.claim_owner(${db}, ${key}, ${owner}, ${now}, ${ttlMs}, ${maxPerOwner}) AS owner`;
    return row!.owner;
  }

  async trim(db: string, now: number): Promise<number> {
    const result = await this.sql`DELETE FROM ${this.t}.owners WHERE db = ${db} AND expires_at <= ${now}`;
    return result.count;
  }
}
