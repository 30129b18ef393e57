/**
 * An invoicing application that tells every screen showing an invoice when it changes
 * (docs/changes.md). The invoices live in the application's own PostgreSQL table; each
 * write publishes its change inside the same transaction, so a subscriber hears of it
 * when, and only if, the write commits.
 *
 *   node --import tsx examples/changes/app.ts postgres://localhost/mydb
 *
 * starts the application with a tidings server on a free port, connects as customer 7's
 * browser would (a rohrpost-js WebSocket), runs a few writes and prints every frame that
 * browser receives.
 */
import { pathToFileURL } from "node:url";
import postgres from "postgres";
import WebSocket from "ws";
// In an application: from "tidings".
import { createServer, signToken, type TidingsServer } from "../../src/index.js";

const DB = "shop";

export interface Invoice {
  id: number;
  customer_id: number;
  state: string;
  total: string;
  /** Internal: never sent to browsers. */
  note: string;
}

/** The application's transaction: the invoice functions write in it and publish in it. */
type Tx = postgres.TransactionSql;

export interface InvoiceApp {
  readonly server: TidingsServer;
  readonly secret: string;
  /** Runs `work` in one transaction of the application's database. */
  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  create(tx: Tx, invoice: { customer_id: number; total: string; note?: string }): Promise<Invoice>;
  update(tx: Tx, id: number, patch: Partial<Pick<Invoice, "state" | "total" | "note">>): Promise<Invoice>;
  remove(tx: Tx, id: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the application: its table in `schema`, the tidings log in `<schema>_tidings` of
 * the same database (transactional publish needs both in one database).
 */
export async function startInvoiceApp(options: { postgresUrl: string; schema?: string; secret?: string }): Promise<InvoiceApp> {
  const schema = options.schema ?? "shop";
  const secret = options.secret ?? "example-secret-example-secret-0123456789";
  const sql = postgres(options.postgresUrl, { onnotice: () => {} });
  await sql.unsafe(`
    CREATE SCHEMA IF NOT EXISTS ${schema};
    CREATE TABLE IF NOT EXISTS ${schema}.invoice (
      id serial PRIMARY KEY,
      customer_id int NOT NULL,
      state text NOT NULL DEFAULT 'draft',
      total numeric(12, 2) NOT NULL,
      note text NOT NULL DEFAULT ''
    )`);
  const store = new URL(options.postgresUrl);
  store.searchParams.set("schema", `${schema}_tidings`);
  const server = await createServer({
    store: store.toString(),
    databases: [DB],
    secret,
    logLevel: "silent",
    // Customers read their own group; the accounting team reads every invoice.
    accessRules: [{ channels: "customer-{user}" }, { channels: "invoice*", users: ["accountant"] }],
  });
  await server.listen(0, "127.0.0.1");

  // Registered once: where an invoice's changes go and what browsers may see of it.
  server.bus.changes.model("invoice", {
    groups: ["invoice-{id}", "customer-{customer_id}", "invoices"],
    serialize: (inv) => ({ id: inv.id, customer_id: inv.customer_id, state: inv.state, total: inv.total }),
    suppressEmptyUpdates: true,
  });
  const changes = server.bus.changes;
  const table = sql(schema);

  return {
    server,
    secret,
    transaction: <T>(work: (tx: Tx) => Promise<T>) => sql.begin(work) as Promise<T>,

    async create(tx, invoice) {
      const [row] = await tx<Invoice[]>`
        INSERT INTO ${table}.invoice (customer_id, total, note)
        VALUES (${invoice.customer_id}, ${invoice.total}, ${invoice.note ?? ""}) RETURNING *`;
      await changes.created(DB, "invoice", { ...row! }, { tx });
      return row!;
    },

    async update(tx, id, patch) {
      const [before] = await tx<Invoice[]>`SELECT * FROM ${table}.invoice WHERE id = ${id} FOR UPDATE`;
      if (before === undefined) throw new Error(`No invoice ${id}.`);
      const after = { ...before, ...patch };
      await tx`UPDATE ${table}.invoice SET state = ${after.state}, total = ${after.total}, note = ${after.note} WHERE id = ${id}`;
      const updatedFields = (["state", "total", "note"] as const).filter((f) => before[f] !== after[f]);
      // Nothing changed: published as nothing (suppressEmptyUpdates).
      await changes.updated(DB, "invoice", { ...after }, { tx, updatedFields });
      return after;
    },

    async remove(tx, id) {
      const [gone] = await tx<Invoice[]>`DELETE FROM ${table}.invoice WHERE id = ${id} RETURNING *`;
      if (gone === undefined) throw new Error(`No invoice ${id}.`);
      // A delete carries the invoice as it was.
      await changes.deleted(DB, "invoice", { ...gone }, { tx });
    },

    async close() {
      await server.close();
      await sql.end({ timeout: 5 });
    },
  };
}

/** Writes the frames this runs: create, pay, an edit that changes nothing, an edit rolled back, delete. */
export async function runScenario(app: InvoiceApp): Promise<void> {
  const invoice = await app.transaction((tx) => app.create(tx, { customer_id: 7, total: "120.00", note: "call first" }));
  await app.transaction((tx) => app.update(tx, invoice.id, { state: "paid" }));
  await app.transaction((tx) => app.update(tx, invoice.id, { state: "paid" }));
  await app
    .transaction(async (tx) => {
      await app.update(tx, invoice.id, { state: "cancelled" });
      throw new Error("changed my mind");
    })
    .catch(() => {});
  await app.transaction((tx) => app.remove(tx, invoice.id));
}

/** Customer 7's browser: a rohrpost-js WebSocket subscribed to its group, every frame as text. */
export async function connectCustomer(app: InvoiceApp, customer: number, onFrame: (text: string) => void): Promise<WebSocket> {
  const token = await signToken(app.secret, { db: DB, user: String(customer), role: "subscriber" });
  const ws = new WebSocket(`${app.server.url.replace(/^http/, "ws")}/${DB}/ws?token=${token}`);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const subscribed = new Promise<void>((resolve, reject) => {
    ws.on("message", (data) => {
      const text = data.toString();
      const frame = JSON.parse(text) as { id?: unknown; error?: string };
      if (frame.id === 1) return frame.error === undefined ? resolve() : reject(new Error(frame.error));
      onFrame(text);
    });
  });
  ws.send(JSON.stringify({ id: 1, type: "subscribe", data: { type: "customer", id: customer } }));
  await subscribed;
  return ws;
}

async function main(): Promise<void> {
  const postgresUrl = process.argv[2];
  if (postgresUrl === undefined) {
    process.stderr.write("usage: node --import tsx examples/changes/app.ts postgres://…/db [schema]\n");
    process.exit(2);
  }
  const app = await startInvoiceApp({ postgresUrl, ...(process.argv[3] ? { schema: process.argv[3] } : {}) });
  const frames: string[] = [];
  const ws = await connectCustomer(app, 7, (text) => frames.push(text));
  await runScenario(app);
  // The delete is the last change: wait for its frame (at most 30 s).
  const deadline = Date.now() + 30_000;
  while (!frames.some((f) => f.includes('"type":"delete"')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  ws.close();
  await app.close();
  process.stdout.write(frames.map((f) => `${f}\n`).join(""));
  if (!frames.some((f) => f.includes('"type":"delete"'))) process.exit(1);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
