import { TidingsError } from "../errors.js";
import { changeMessage, isChangeType, type ChangeObject, type ChangeType } from "../protocol/changes.js";
import { MAX_CHANNEL_LENGTH, validateChannel } from "./channels.js";
import { isPlainObject } from "./messages.js";
import { publishManyInTransaction, type SqlHandle, type TransactionalPublisher } from "./transactional.js";
import type { PublishItem } from "./messages.js";

/** What changes need of the bus: publishing, inside the application's transaction or not. */
export interface ChangePublisher extends TransactionalPublisher {
  publishMany(db: string, items: readonly PublishItem[]): Promise<string[]>;
}

/**
 * Where a change goes: a template such as `"invoice-{id}"` or `"customer-{customer_id}"`
 * (each `{field}` is that field of the record; a null field leaves that group out), or a
 * function of the record returning one group, several, or none (null/undefined/[]).
 */
export type GroupRule =
  | string
  | ((record: ChangeObject, type: ChangeType) => string | readonly string[] | null | undefined);

/** A model's configuration, registered once with `bus.changes.model(name, options)`. */
export interface ModelOptions {
  /** One rule or several (per object, per model, global…). @default "<model>-{id}" (rohrpost's default) */
  readonly groups?: GroupRule | readonly GroupRule[];
  /**
   * What goes in the message's `object`. On updates `updated_fields` is added unless this
   * sets it. @default the record's id only: `{"id": record.id}` (rohrpost's default)
   */
  readonly serialize?: (record: ChangeObject, type: ChangeType) => ChangeObject;
  /** An update whose `updatedFields` is empty publishes nothing. @default false */
  readonly suppressEmptyUpdates?: boolean;
}

export interface ChangeOptions {
  /** The application's PostgreSQL transaction: the change is sent when, and only if, it commits. */
  readonly tx?: SqlHandle;
  /** These groups instead of the model's rules. */
  readonly groups?: readonly string[];
}

export interface UpdateOptions extends ChangeOptions {
  /** The fields that changed, sent as `object.updated_fields`. */
  readonly updatedFields?: readonly string[];
}

/** One change as the HTTP API and `publish` take it. */
export interface ChangeInput {
  readonly model: string;
  readonly type: ChangeType;
  readonly object: ChangeObject;
  readonly updatedFields?: readonly string[];
  readonly groups?: readonly string[];
  /** Send `object` as given, not through the model's serializer (HTTP, CLI: the caller serialised it). */
  readonly asGiven?: boolean;
}

const MAX_MODEL_LENGTH = 200;
const FIELD = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

function changeError(message: string, details?: Record<string, unknown>): never {
  throw new TidingsError("TIDINGS_ERR_CHANGE_INVALID", message, details ? { details } : undefined);
}

/** A model name: part of default group names, so it must be a valid channel of its own. */
export function validateModelName(model: unknown): string {
  if (typeof model !== "string" || model.length === 0 || model.length > MAX_MODEL_LENGTH) {
    throw new TidingsError("TIDINGS_ERR_CHANGE_MODEL_INVALID", `A model name is a string of 1 to ${MAX_MODEL_LENGTH} characters.`);
  }
  if (/[\u0000-\u001f\u007f{}]/.test(model)) {
    throw new TidingsError("TIDINGS_ERR_CHANGE_MODEL_INVALID", "A model name must not contain control characters or braces.", {
      details: { model: model.slice(0, 64) },
    });
  }
  return model;
}

export function validateGroup(group: unknown): string {
  try {
    return validateChannel(group);
  } catch (e) {
    throw new TidingsError(
      "TIDINGS_ERR_CHANGE_GROUP_INVALID",
      `A group is a channel name: a string of 1 to ${MAX_CHANNEL_LENGTH} characters without control characters.`,
      { cause: e, ...(typeof group === "string" ? { details: { group: group.slice(0, 64) } } : {}) },
    );
  }
}

/** Checks a template's `{field}` placeholders once, at registration. */
export function validateTemplate(template: string): string {
  const rest = template.replace(FIELD, "");
  if (rest.includes("{") || rest.includes("}")) {
    throw new TidingsError(
      "TIDINGS_ERR_CHANGE_GROUP_INVALID",
      `The group template ${JSON.stringify(template.slice(0, 64))} is not valid: use {field} placeholders of letters, digits and _.`,
    );
  }
  validateGroup(template);
  return template;
}

/** The fields a template reads, in order (`invoice-{id}` → ["id"]). */
export function templateFields(template: string): string[] {
  return [...template.matchAll(FIELD)].map((m) => m[1]!);
}

/** The group a template names for this record; null when one of its fields is null. */
export function renderTemplate(template: string, record: ChangeObject): string | null {
  let missing: string | null = null;
  let isNull = false;
  const out = template.replace(FIELD, (_all, field: string) => {
    if (!(field in record) || record[field] === undefined) missing ??= field;
    const v = record[field];
    if (v === null) isNull = true;
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return String(v);
    if (v !== null && v !== undefined && missing === null) missing = field;
    return "";
  });
  if (missing !== null) {
    throw new TidingsError(
      "TIDINGS_ERR_CHANGE_GROUP_INVALID",
      `The group template ${JSON.stringify(template)} needs a string or number field "${missing}" in the object.`,
    );
  }
  return isNull ? null : validateGroup(out);
}

function validateId(object: ChangeObject): void {
  const id = object.id;
  const ok = (typeof id === "string" && id.length > 0) || (typeof id === "number" && Number.isFinite(id));
  if (!ok) changeError('The object needs an "id": a non-empty string or a number.');
}

function validateFields(fields: unknown): readonly string[] {
  if (!Array.isArray(fields) || !fields.every((f) => typeof f === "string")) {
    changeError("updated_fields must be a list of field names (strings).");
  }
  return fields as string[];
}

interface Model {
  readonly groups: readonly GroupRule[];
  readonly serialize: ((record: ChangeObject, type: ChangeType) => ChangeObject) | undefined;
  readonly suppressEmptyUpdates: boolean;
}

/**
 * Model-change broadcasts (DESIGN §7): `created`, `updated` and `deleted` of a record become
 * `subscription-update` messages `{type, group, object}` on each of the record's groups,
 * appended in one atomic batch, in the application's transaction when it gives one.
 */
export class ChangeService {
  private readonly models = new Map<string, Model>();

  constructor(private readonly bus: ChangePublisher) {}

  /** Registers a model's groups, serializer and options; a name registered twice is an error. */
  model(name: string, options: ModelOptions = {}): void {
    validateModelName(name);
    if (this.models.has(name)) {
      throw new TidingsError("TIDINGS_ERR_CONFIG", `The model ${JSON.stringify(name)} is already registered.`);
    }
    const rules = options.groups === undefined ? [] : Array.isArray(options.groups) ? options.groups : [options.groups];
    for (const rule of rules as readonly unknown[]) {
      if (typeof rule === "string") validateTemplate(rule);
      else if (typeof rule !== "function") {
        throw new TidingsError("TIDINGS_ERR_CHANGE_GROUP_INVALID", "A group rule is a template string or a function.");
      }
    }
    if (options.serialize !== undefined && typeof options.serialize !== "function") {
      throw new TidingsError("TIDINGS_ERR_CONFIG", "serialize must be a function.");
    }
    this.models.set(name, {
      groups: rules as readonly GroupRule[],
      serialize: options.serialize,
      suppressEmptyUpdates: options.suppressEmptyUpdates ?? false,
    });
  }

  created(db: string, model: string, object: ChangeObject, options: ChangeOptions = {}): Promise<string[]> {
    return this.send(db, { model, type: "create", object, ...pick(options) }, options.tx);
  }

  updated(db: string, model: string, object: ChangeObject, options: UpdateOptions = {}): Promise<string[]> {
    const fields = options.updatedFields === undefined ? {} : { updatedFields: options.updatedFields };
    return this.send(db, { model, type: "update", object, ...fields, ...pick(options) }, options.tx);
  }

  /** `object` is the record as it was before deletion. */
  deleted(db: string, model: string, object: ChangeObject, options: ChangeOptions = {}): Promise<string[]> {
    return this.send(db, { model, type: "delete", object, ...pick(options) }, options.tx);
  }

  /** Several changes in one atomic, ordered batch; returns the message ids of all of them in order. */
  async publish(db: string, changes: readonly ChangeInput[], tx?: SqlHandle): Promise<string[]> {
    return (await this.publishEach(db, changes, tx)).flat();
  }

  /** `publish`, answering the message ids of each change (one per group; none when suppressed). */
  async publishEach(db: string, changes: readonly ChangeInput[], tx?: SqlHandle): Promise<string[][]> {
    const perChange = changes.map((c, i) => this.toItems(c, changes.length > 1 ? i : undefined));
    const items = perChange.flat();
    const ids = items.length === 0 ? [] : tx === undefined ? await this.bus.publishMany(db, items) : await publishManyInTransaction(this.bus, tx, db, items);
    let at = 0;
    return perChange.map((list) => ids.slice(at, (at += list.length)));
  }

  private send(db: string, change: ChangeInput, tx: SqlHandle | undefined): Promise<string[]> {
    return this.publish(db, [change], tx);
  }

  /** Validates one change and builds its messages, one per group. */
  private toItems(change: ChangeInput, index: number | undefined): PublishItem[] {
    const at = index === undefined ? "" : `changes[${index}]: `;
    try {
      return this.buildItems(change);
    } catch (e) {
      if (e instanceof TidingsError && at !== "") {
        throw new TidingsError(e.code, `${at}${e.message}`, { cause: e.cause, ...(e.details ? { details: e.details } : {}) });
      }
      throw e;
    }
  }

  private buildItems(change: ChangeInput): PublishItem[] {
    if (!isPlainObject(change)) changeError("A change must be a JSON object.");
    const model = validateModelName(change.model);
    if (!isChangeType(change.type)) changeError('type must be "create", "update" or "delete".');
    const type = change.type;
    if (!isPlainObject(change.object)) changeError("object must be a JSON object.");
    const record = change.object;
    validateId(record);
    let fields: readonly string[] | undefined;
    if (change.updatedFields !== undefined) {
      if (type !== "update") changeError("updated_fields is only for updates.");
      fields = validateFields(change.updatedFields);
    }
    const config = this.models.get(model);
    if (type === "update" && fields !== undefined && fields.length === 0 && config?.suppressEmptyUpdates) return [];
    const groups = change.groups !== undefined ? explicitGroups(change.groups) : this.groupsOf(model, config, record, type);
    let object: ChangeObject;
    if (change.asGiven === true) object = record;
    else if (config?.serialize) object = config.serialize(record, type);
    else object = { id: record.id };
    if (!isPlainObject(object)) changeError(`The serializer of model ${model} must return an object.`);
    if (fields !== undefined && !("updated_fields" in object)) object = { ...object, updated_fields: fields };
    return groups.map((group) => ({ channel: group, message: changeMessage(type, group, object) }));
  }

  private groupsOf(model: string, config: Model | undefined, record: ChangeObject, type: ChangeType): string[] {
    if (config === undefined || config.groups.length === 0) return [validateGroup(`${model}-${String(record.id)}`)];
    const out = new Set<string>();
    for (const rule of config.groups) {
      if (typeof rule === "string") {
        const g = renderTemplate(rule, record);
        if (g !== null) out.add(g);
        continue;
      }
      const named = rule(record, type);
      if (named === null || named === undefined) continue;
      for (const g of typeof named === "string" ? [named] : named) out.add(validateGroup(g));
    }
    return [...out];
  }
}

function pick(options: ChangeOptions): { groups?: readonly string[] } {
  return options.groups === undefined ? {} : { groups: options.groups };
}

function explicitGroups(groups: unknown): string[] {
  if (!Array.isArray(groups) || groups.length === 0) {
    throw new TidingsError("TIDINGS_ERR_CHANGE_GROUP_INVALID", "groups must be a non-empty list of channel names.");
  }
  return [...new Set(groups.map(validateGroup))];
}
