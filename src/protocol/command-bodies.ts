import { Type } from "@sinclair/typebox";

/**
 * The bodies of the HTTP command API and the data of the WebSocket command frames
 * (docs/protocol/commands.md), checked by src/protocol/validate.ts before anything is
 * sent on: a wrong field is named, with the code its schema declares.
 */

/** Addresses name a client, e.g. `software_dev.buildbot:5`. */
export const ADDRESS = /^[A-Za-z0-9_.:-]{1,200}$/;
/** Method names are identifiers, as a JS proxy property or a Python attribute would be. */
export const METHOD = /^[A-Za-z_$][A-Za-z0-9_$.:-]{0,99}$/;
/** Claimer names chosen by HTTP clients. */
export const CLAIMER = /^[A-Za-z0-9_.:-]{1,100}$/;
/** Most commands one claim hands out. */
export const MAX_CLAIM = 100;

const OBJECT = { errorMessage: "must be a JSON object.", errorCode: "TIDINGS_ERR_REQUEST_INVALID" } as const;

export const ADDRESS_FIELD = Type.String({
  pattern: ADDRESS.source,
  description: "the address of the client that runs the command, e.g. `software_dev.buildbot:5`",
  errorCode: "TIDINGS_ERR_ADDRESS_INVALID",
  errorMessage: "must be 1 to 200 of A-Z a-z 0-9 _ . : - (e.g. software_dev.buildbot:5).",
});

const CLAIMER_FIELD = Type.String({
  pattern: CLAIMER.source,
  description: "the name the claim answer gave",
  errorCode: "TIDINGS_ERR_REQUEST_INVALID",
  errorMessage: "must be 1 to 100 of A-Z a-z 0-9 _ . : -",
});

const INVALID_COMMAND = { errorCode: "TIDINGS_ERR_COMMAND_INVALID" } as const;

/** `POST /<db>/commands` */
export const SEND_COMMAND_BODY = Type.Object(
  {
    address: ADDRESS_FIELD,
    method: Type.String({
      ...INVALID_COMMAND,
      pattern: METHOD.source,
      description: "the method the client runs",
      errorMessage: "must be an identifier of 1 to 100 characters (A-Z a-z 0-9 _ $ . : -, not starting with a digit).",
    }),
    args: Type.Optional(Type.Array(Type.Unknown(), { ...INVALID_COMMAND, description: "its arguments", errorMessage: "must be a JSON array." })),
    deadline: Type.Optional(
      Type.Union([Type.String(), Type.Number(), Type.Null()], {
        ...INVALID_COMMAND,
        description: "an ISO 8601 date or milliseconds since the epoch; past it the command ends `expired`",
        errorMessage: "must be an ISO 8601 date or milliseconds since the epoch.",
      }),
    ),
    timeout: Type.Optional(
      Type.Union([Type.Number({ exclusiveMinimum: 0 }), Type.Null()], {
        ...INVALID_COMMAND,
        description: "seconds from now, instead of a deadline",
        errorMessage: "must be a positive number of seconds.",
      }),
    ),
    idempotency_key: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Null()], {
        ...INVALID_COMMAND,
        description: "a second send with the same key returns the first command",
        errorMessage: "must be a string of 1 to 200 characters.",
      }),
    ),
  },
  { ...OBJECT, requiredCode: "TIDINGS_ERR_COMMAND_INVALID" },
);

/** `POST /<db>/commands/claim` */
export const CLAIM_BODY = Type.Object(
  {
    address: ADDRESS_FIELD,
    claimer: Type.Optional(CLAIMER_FIELD),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_CLAIM, default: 10, description: "most commands to take" })),
    wait: Type.Optional(Type.Number({ minimum: 0, default: 0, description: "seconds to wait for a command when none is pending" })),
  },
  OBJECT,
);

/** `POST /<db>/commands/renew`, `…/<id>/start` */
export const CLAIMER_BODY = Type.Object({ claimer: CLAIMER_FIELD }, OBJECT);

/** `POST /<db>/commands/release` */
export const RELEASE_BODY = Type.Object({ claimer: CLAIMER_FIELD, address: ADDRESS_FIELD }, OBJECT);

/** Why a command failed, as its client reports it. */
export const COMMAND_ERROR = Type.Object(
  {
    message: Type.String({ description: "what went wrong" }),
    code: Type.Optional(Type.String({ description: "the client's own code" })),
    data: Type.Optional(Type.Unknown()),
  },
  { ...INVALID_COMMAND, errorMessage: 'must be an object with a string "message".' },
);

/** `POST /<db>/commands/<id>/result`: exactly one of `result` and `error` (src/commands/validation.ts checks which). */
export const RESULT_BODY = Type.Object(
  {
    claimer: CLAIMER_FIELD,
    result: Type.Optional(Type.Unknown({ description: "the method's return value" })),
    error: Type.Optional(Type.Union([COMMAND_ERROR, Type.Null()], { ...INVALID_COMMAND })),
  },
  OBJECT,
);

/** The data of the WebSocket `command-register` and `command-unregister` frames. */
export const ADDRESS_DATA = Type.Object({ address: ADDRESS_FIELD }, { errorMessage: 'must be an object {"address": …}.', errorCode: "TIDINGS_ERR_REQUEST_INVALID" });

/** The `data` of a WebSocket `command` frame and an item of a claim answer: what a client runs. */
export const COMMAND_DELIVERY = Type.Object({
  id: Type.String({ description: "the command id" }),
  address: Type.String(),
  method: Type.String(),
  args: Type.Array(Type.Unknown()),
  attempt: Type.Integer({ minimum: 1, description: "1 on the first delivery; more when delivered again after a lost client" }),
  deadline: Type.Union([Type.String({ description: "ISO 8601" }), Type.Null()]),
});
