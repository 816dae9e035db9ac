/**
 * etcd's messages between their proto3 JSON form, which the client speaks
 * above the transport, and protobuf on the wire. Field names are the proto
 * names (`range_end`), as the gateway writes them; int64 are decimal strings
 * and enums their names, as in the gateway's JSON; fields at their zero
 * value are left out, as the gateway leaves them out. Bytes go in as base64,
 * and come out as the bytes themselves (`bytesField` in wire.ts reads either),
 * which spares decoding a range of a thousand keys a base64 round trip.
 *
 * How it works: @bufbuild/protobuf encodes and decodes the binary form from
 * etcd's generated descriptors. Between its messages and the JSON form this
 * module walks the same descriptors itself, with a plan per message type made
 * once: @bufbuild/protobuf's own JSON conversion is general (every well-known
 * type, every option) and spends most of a call's time on base64 in
 * JavaScript, where Node's Buffer does it natively.
 */
import {
  create,
  type DescEnum,
  type DescField,
  type DescMessage,
  fromBinary,
  ScalarType,
  toBinary,
} from '@bufbuild/protobuf';
import { ProtocolError } from '../errors.js';
import type { Json } from '../wire.js';
import { frame } from './grpc-frames.js';
import type { GrpcMethod } from './grpc-methods.js';

/** The request `body` of `method` as one framed protobuf message. */
export function encodeMessage(method: GrpcMethod, body: Json): Buffer {
  let bytes: Uint8Array;
  try {
    bytes = toBinary(method.input, create(method.input, toInit(method.input, body)));
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(`cannot encode ${method.path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return frame(bytes);
}

/** One answer of `method` in its JSON form. */
export function decodeMessage(method: GrpcMethod, bytes: Uint8Array): Json {
  try {
    return toJsonForm(method.output, fromBinary(method.output, bytes));
  } catch (err) {
    throw new ProtocolError(
      `cannot decode the answer of ${method.path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

type Init = Record<string, unknown>;
type Message = Record<string, unknown>;

/** A message type's fields, by proto name and JSON name. */
const byName = new WeakMap<DescMessage, Map<string, DescField>>();

function fieldsOf(desc: DescMessage): Map<string, DescField> {
  let fields = byName.get(desc);
  if (!fields) {
    fields = new Map();
    for (const field of desc.fields) {
      fields.set(field.name, field);
      fields.set(field.jsonName, field);
    }
    byName.set(desc, fields);
  }
  return fields;
}

/** The JSON form of a `desc` message as @bufbuild/protobuf's init object. */
function toInit(desc: DescMessage, json: Json): Init {
  const init: Init = {};
  const fields = fieldsOf(desc);
  for (const key in json) {
    const value = json[key];
    if (value === undefined || value === null) continue;
    const field = fields.get(key);
    if (!field) throw new ProtocolError(`${desc.typeName} has no field ${key}`);
    const converted = fieldIn(field, value);
    if (field.oneof) init[field.oneof.localName] = { case: field.localName, value: converted };
    else init[field.localName] = converted;
  }
  return init;
}

function fieldIn(field: DescField, value: unknown): unknown {
  switch (field.fieldKind) {
    case 'scalar':
      return scalarIn(field.scalar, value);
    case 'enum':
      return enumIn(field.enum, value);
    case 'message':
      return toInit(field.message, value as Json);
    case 'list': {
      const list = value as unknown[];
      switch (field.listKind) {
        case 'scalar':
          return list.map((v) => scalarIn(field.scalar, v));
        case 'enum':
          return list.map((v) => enumIn(field.enum, v));
        default:
          return list.map((v) => toInit(field.message, v as Json));
      }
    }
    default:
      throw new ProtocolError(`map field ${field.name} is not supported`);
  }
}

function scalarIn(type: ScalarType, value: unknown): unknown {
  switch (type) {
    case ScalarType.BYTES:
      return typeof value === 'string' ? Buffer.from(value, 'base64') : value;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return BigInt(value as string | number | bigint);
    case ScalarType.BOOL:
      return value === true;
    case ScalarType.STRING:
      return String(value);
    default:
      return Number(value);
  }
}

function enumIn(desc: DescEnum, value: unknown): number {
  if (typeof value === 'number') return value;
  const found = desc.values.find((v) => v.name === value);
  if (!found) throw new ProtocolError(`${desc.typeName} has no value ${String(value)}`);
  return found.number;
}

/** A decoded `desc` message in the JSON form, zero values left out. */
function toJsonForm(desc: DescMessage, message: Message): Json {
  const json: Json = {};
  for (const field of desc.fields) {
    let value: unknown;
    if (field.oneof) {
      const chosen = message[field.oneof.localName] as { case?: string; value?: unknown };
      if (chosen.case !== field.localName) continue;
      value = chosen.value;
    } else {
      value = message[field.localName];
    }
    const out = fieldOut(field, value);
    if (out !== undefined) json[field.name] = out;
  }
  return json;
}

/** A field's JSON form, or undefined for a zero value (left out). */
function fieldOut(field: DescField, value: unknown): unknown {
  switch (field.fieldKind) {
    case 'scalar':
      return scalarOut(field.scalar, value);
    case 'enum':
      return value === 0 ? undefined : enumOut(field.enum, value as number);
    case 'message':
      return value === undefined ? undefined : toJsonForm(field.message, value as Message);
    case 'list': {
      const list = value as unknown[];
      if (list.length === 0) return undefined;
      switch (field.listKind) {
        case 'scalar':
          return list.map((v) => scalarOut(field.scalar, v) ?? zeroOf(field.scalar));
        case 'enum':
          return list.map((v) => enumOut(field.enum, v as number));
        default:
          return list.map((v) => toJsonForm(field.message, v as Message));
      }
    }
    default:
      return undefined;
  }
}

function scalarOut(type: ScalarType, value: unknown): unknown {
  switch (type) {
    case ScalarType.BYTES:
      return (value as Uint8Array).length === 0 ? undefined : value;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return value === 0n ? undefined : String(value);
    case ScalarType.BOOL:
      return value === true ? true : undefined;
    case ScalarType.STRING:
      return value === '' ? undefined : value;
    default:
      return value === 0 ? undefined : value;
  }
}

/** A zero value inside a list, where it cannot be left out. */
function zeroOf(type: ScalarType): unknown {
  switch (type) {
    case ScalarType.BYTES:
      return new Uint8Array(0);
    case ScalarType.STRING:
      return '';
    case ScalarType.BOOL:
      return false;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return '0';
    default:
      return 0;
  }
}

function enumOut(desc: DescEnum, value: number): string | number {
  return desc.values.find((v) => v.number === value)?.name ?? value;
}
