/**
 * etcd's messages between their proto3 JSON form, which the client speaks
 * above the transport, and protobuf on the wire. Field names are the proto
 * names (`range_end`) as the gateway writes them, enums their names, and
 * fields at their zero value are left out, as the gateway leaves them out.
 * On the way in, bytes are base64 (or bytes) and int64 decimal strings (or
 * bigint or number). On the way out, bytes are the bytes themselves and
 * int64 are bigint (`bytesField` and `int64` in wire.ts read either form),
 * which spares a range of a thousand keys a base64 and a decimal round trip.
 *
 * How it works: a plan per message type, made once from etcd's generated
 * descriptors, says for each field its number, name and kind. Encoding walks
 * the JSON form's keys and writes each field with @bufbuild/protobuf's
 * `BinaryWriter`; decoding reads fields with its `BinaryReader` straight into
 * the JSON form. Neither builds @bufbuild/protobuf's message objects on the
 * way: a call's encode and decode are one pass each, with no object per
 * field but the value itself.
 */
import { type DescEnum, type DescField, type DescMessage, ScalarType } from '@bufbuild/protobuf';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { utf8 } from '../bytes.js';
import { ProtocolError } from '../errors.js';
import type { Json } from '../wire.js';
import { PREFIX, sealFrame } from './grpc-frames.js';
import type { GrpcMethod } from './grpc-methods.js';

/** Room for a frame's prefix, filled in by `sealFrame` once the length is known. */
const HEAD = new Uint8Array(PREFIX);

/** The request `body` of `method` as one framed protobuf message. */
export function encodeMessage(method: GrpcMethod, body: Json): Buffer {
  let bytes: Uint8Array;
  try {
    const writer = new BinaryWriter(utf8Bytes);
    writer.raw(HEAD);
    writeMessage(writer, planOf(method.input), body);
    bytes = writer.finish();
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(`cannot encode ${method.path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return sealFrame(bytes);
}

/** One answer of `method` in its JSON form. */
export function decodeMessage(method: GrpcMethod, bytes: Uint8Array): Json {
  // A plain view: bytes fields come out as Uint8Array views, cheaper than Buffer slices.
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    const reader = new BinaryReader(view, utf8);
    return readMessage(reader, planOf(method.output), view.length);
  } catch (err) {
    throw new ProtocolError(
      `cannot decode the answer of ${method.path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

function utf8Bytes(text: string): Uint8Array {
  return Buffer.from(text, 'utf8');
}

/** How one field is written and read. */
interface FieldPlan {
  readonly number: number;
  /** The proto name, as the JSON form names it. */
  readonly name: string;
  readonly kind: 'scalar' | 'enum' | 'message';
  /** The scalar type; enums travel as int32. */
  readonly scalar: ScalarType;
  readonly repeated: boolean;
  /** Written even at its zero value: a oneof member says which case is set. */
  readonly keepZero: boolean;
  readonly enumDesc: DescEnum | undefined;
  readonly message: DescMessage | undefined;
  /** The message's plan, made on first use (messages may nest themselves). */
  plan?: MessagePlan;
}

interface MessagePlan {
  readonly typeName: string;
  /** Fields by proto name and by JSON name. */
  readonly byName: Map<string, FieldPlan>;
  /** Fields by number. */
  readonly byNumber: Array<FieldPlan | undefined>;
}

const plans = new WeakMap<DescMessage, MessagePlan>();

function planOf(desc: DescMessage): MessagePlan {
  let plan = plans.get(desc);
  if (!plan) {
    plan = { typeName: desc.typeName, byName: new Map(), byNumber: [] };
    for (const field of desc.fields) {
      const fieldPlan = fieldPlanOf(field);
      plan.byName.set(field.name, fieldPlan);
      plan.byName.set(field.jsonName, fieldPlan);
      plan.byNumber[field.number] = fieldPlan;
    }
    plans.set(desc, plan);
  }
  return plan;
}

function fieldPlanOf(field: DescField): FieldPlan {
  const repeated = field.fieldKind === 'list';
  const kind = field.fieldKind === 'list' ? field.listKind : field.fieldKind;
  if (kind === 'map') throw new ProtocolError(`map field ${field.name} is not supported`);
  const typed = field as DescField & {
    scalar?: ScalarType;
    enum?: DescEnum;
    message?: DescMessage;
  };
  return {
    number: field.number,
    name: field.name,
    kind,
    // Enums travel as int32; messages, like bytes, length-delimited.
    scalar:
      kind === 'scalar' ? typed.scalar! : kind === 'enum' ? ScalarType.INT32 : ScalarType.BYTES,
    repeated,
    keepZero: field.oneof !== undefined,
    enumDesc: kind === 'enum' ? typed.enum : undefined,
    message: kind === 'message' ? typed.message : undefined,
  };
}

function subPlan(field: FieldPlan): MessagePlan {
  field.plan ??= planOf(field.message!);
  return field.plan;
}

// ---- encoding ----

function writeMessage(writer: BinaryWriter, plan: MessagePlan, json: Json): void {
  for (const key in json) {
    const value = json[key];
    if (value === undefined || value === null) continue;
    const field = plan.byName.get(key);
    if (!field) throw new ProtocolError(`${plan.typeName} has no field ${key}`);
    if (field.repeated) writeList(writer, field, value as unknown[]);
    else writeField(writer, field, value);
  }
}

function writeField(writer: BinaryWriter, field: FieldPlan, value: unknown): void {
  if (field.kind === 'message') {
    writer.tag(field.number, WireType.LengthDelimited).fork();
    writeMessage(writer, subPlan(field), value as Json);
    writer.join();
    return;
  }
  const scalar = valueIn(field, value);
  if (!field.keepZero && isZero(scalar)) return;
  writeScalar(writer.tag(field.number, wireTypeOf(field.scalar)), field.scalar, scalar);
}

function writeList(writer: BinaryWriter, field: FieldPlan, list: unknown[]): void {
  if (list.length === 0) return;
  if (field.kind === 'message') {
    for (const item of list) writeField(writer, field, item);
    return;
  }
  const { scalar } = field;
  if (!packable(scalar)) {
    for (const item of list) {
      writeScalar(writer.tag(field.number, WireType.LengthDelimited), scalar, valueIn(field, item));
    }
    return;
  }
  writer.tag(field.number, WireType.LengthDelimited).fork();
  for (const item of list) writeScalar(writer, scalar, valueIn(field, item));
  writer.join();
}

/** A scalar or enum field's value as the writer takes it. */
function valueIn(field: FieldPlan, value: unknown): unknown {
  return field.kind === 'enum' ? enumIn(field.enumDesc!, value) : scalarIn(field.scalar, value);
}

/** A JSON-form value as the writer takes it; throws on one that does not fit the type. */
function scalarIn(type: ScalarType, value: unknown): unknown {
  switch (type) {
    case ScalarType.BYTES:
      if (typeof value === 'string') return Buffer.from(value, 'base64');
      if (value instanceof Uint8Array) return value;
      throw new ProtocolError(`expected bytes, got ${typeof value}`);
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

function isZero(value: unknown): boolean {
  if (value instanceof Uint8Array) return value.length === 0;
  return value === 0 || value === 0n || value === false || value === '';
}

function enumIn(desc: DescEnum, value: unknown): number {
  if (typeof value === 'number') return value;
  const found = desc.values.find((v) => v.name === value);
  if (!found) throw new ProtocolError(`${desc.typeName} has no value ${String(value)}`);
  return found.number;
}

function wireTypeOf(type: ScalarType): WireType {
  switch (type) {
    case ScalarType.BYTES:
    case ScalarType.STRING:
      return WireType.LengthDelimited;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WireType.Bit64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return WireType.Bit32;
    default:
      return WireType.Varint;
  }
}

function writeScalar(writer: BinaryWriter, type: ScalarType, value: unknown): void {
  switch (type) {
    case ScalarType.BYTES:
      writer.bytes(value as Uint8Array);
      return;
    case ScalarType.STRING:
      writer.string(value as string);
      return;
    case ScalarType.BOOL:
      writer.bool(value as boolean);
      return;
    case ScalarType.INT64:
      writer.int64(value as bigint);
      return;
    case ScalarType.UINT64:
      writer.uint64(value as bigint);
      return;
    case ScalarType.SINT64:
      writer.sint64(value as bigint);
      return;
    case ScalarType.FIXED64:
      writer.fixed64(value as bigint);
      return;
    case ScalarType.SFIXED64:
      writer.sfixed64(value as bigint);
      return;
    case ScalarType.INT32:
      writer.int32(value as number);
      return;
    case ScalarType.UINT32:
      writer.uint32(value as number);
      return;
    case ScalarType.SINT32:
      writer.sint32(value as number);
      return;
    case ScalarType.FIXED32:
      writer.fixed32(value as number);
      return;
    case ScalarType.SFIXED32:
      writer.sfixed32(value as number);
      return;
    case ScalarType.FLOAT:
      writer.float(value as number);
      return;
    case ScalarType.DOUBLE:
      writer.double(value as number);
      return;
  }
}

// ---- decoding ----

/** Reads a message's fields up to `end` into its JSON form, zero values left out. */
function readMessage(reader: BinaryReader, plan: MessagePlan, end: number): Json {
  const json: Json = {};
  while (reader.pos < end) {
    // The tag as one varint: `reader.tag()` would allocate a pair per field.
    const tag = reader.uint32();
    const number = tag >>> 3;
    const wireType = (tag & 7) as WireType;
    const field = plan.byNumber[number];
    if (!field) {
      reader.skip(wireType, number);
      continue;
    }
    if (!field.repeated) {
      const value = readOne(reader, field);
      if (value !== undefined) json[field.name] = value;
      continue;
    }
    let list = json[field.name] as unknown[] | undefined;
    if (!list) {
      list = [];
      json[field.name] = list;
    }
    if (
      field.kind !== 'message' &&
      wireType === WireType.LengthDelimited &&
      packable(field.scalar)
    ) {
      const stop = reader.uint32() + reader.pos;
      while (reader.pos < stop) list.push(readListItem(reader, field));
    } else {
      list.push(readListItem(reader, field));
    }
  }
  if (reader.pos !== end) throw new Error(`${plan.typeName} overran its length`);
  return json;
}

/** Numbers, bools and enums are packed in proto3; bytes and strings cannot be. */
function packable(type: ScalarType): boolean {
  return type !== ScalarType.BYTES && type !== ScalarType.STRING;
}

/** A singular field's JSON form, or undefined for its zero value. */
function readOne(reader: BinaryReader, field: FieldPlan): unknown {
  if (field.kind === 'enum') {
    const number = reader.int32();
    return number === 0 ? undefined : enumOut(field.enumDesc!, number);
  }
  const value = readListItem(reader, field);
  return field.kind === 'scalar' && isZero(value) ? undefined : value;
}

/** A list item's JSON form: zero values stay, as a list cannot leave them out. */
function readListItem(reader: BinaryReader, field: FieldPlan): unknown {
  switch (field.kind) {
    case 'message': {
      const length = reader.uint32();
      return readMessage(reader, subPlan(field), reader.pos + length);
    }
    case 'enum':
      return enumOut(field.enumDesc!, reader.int32());
    default:
      return readScalar(reader, field.scalar);
  }
}

function readScalar(reader: BinaryReader, type: ScalarType): unknown {
  switch (type) {
    case ScalarType.BYTES:
      return reader.bytes();
    case ScalarType.STRING:
      return reader.string();
    case ScalarType.BOOL:
      return reader.bool();
    case ScalarType.INT64:
      return big(reader.int64());
    case ScalarType.UINT64:
      return big(reader.uint64());
    case ScalarType.SINT64:
      return big(reader.sint64());
    case ScalarType.FIXED64:
      return big(reader.fixed64());
    case ScalarType.SFIXED64:
      return big(reader.sfixed64());
    case ScalarType.INT32:
      return reader.int32();
    case ScalarType.UINT32:
      return reader.uint32();
    case ScalarType.SINT32:
      return reader.sint32();
    case ScalarType.FIXED32:
      return reader.fixed32();
    case ScalarType.SFIXED32:
      return reader.sfixed32();
    case ScalarType.FLOAT:
      return reader.float();
    default:
      return reader.double();
  }
}

/** An int64 as bigint, also when @bufbuild/protobuf is told to give strings. */
function big(value: bigint | string): bigint {
  return typeof value === 'bigint' ? value : BigInt(value);
}

function enumOut(desc: DescEnum, value: number): string | number {
  return desc.values.find((v) => v.number === value)?.name ?? value;
}
