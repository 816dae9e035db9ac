/**
 * Just enough protocol buffers for the raw gRPC loop (raw-grpc.ts): encoders
 * for the few request messages of etcd's KV, Lease and Watch services that
 * the workloads send, gRPC's framing of a message, and a reader that walks
 * the fields of an answer, so the loop reads only what its next call needs. Field numbers are those of etcd's
 * API v3 (etcdserverpb/rpc.proto and mvccpb/kv.proto).
 *
 * Only what the workloads use is here: every integer sent is non-negative
 * and below 2^53, and a lease ID is never decoded, only carried as the bytes
 * of its varint from a grant to the revoke.
 */

/** Wire types: a varint, 8 bytes, a length-delimited payload, 4 bytes. */
const VARINT = 0;
const FIXED64 = 1;
const LENGTH = 2;
const FIXED32 = 5;

/** Bytes before each gRPC message: a flag (0: not compressed), then its length, 32-bit big-endian. */
export const PREFIX = 5;

/** A message as gRPC sends it, after its 5-byte prefix. */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(PREFIX + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, PREFIX);
  return out;
}

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

function tag(field: number, wire: number): number[] {
  return varint(field * 8 + wire);
}

/** A length-delimited field: bytes, a string or an embedded message. */
function lengthField(field: number, payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([...tag(field, LENGTH), ...varint(payload.length)]), payload]);
}

/** A varint field; proto3 leaves zero out. */
function varintField(field: number, value: number): Buffer {
  return value === 0 ? Buffer.alloc(0) : Buffer.from([...tag(field, VARINT), ...varint(value)]);
}

/** A varint field whose value is given as the bytes of its varint, as read from an answer. */
function rawVarintField(field: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(tag(field, VARINT)), bytes]);
}

function text(field: number, value: string | undefined): Buffer {
  return value === undefined ? Buffer.alloc(0) : lengthField(field, Buffer.from(value, 'utf8'));
}

/** PutRequest: key = 1, value = 2, lease = 3 (the varint bytes of a granted ID). */
export function putRequest(key: string, value: string, lease?: Uint8Array): Buffer {
  return Buffer.concat([
    text(1, key),
    text(2, value),
    lease ? rawVarintField(3, lease) : Buffer.alloc(0),
  ]);
}

/** RangeRequest: key = 1, range_end = 2, limit = 3. Linearizable: serializable (7) unset. */
export function rangeRequest(key: string, rangeEnd?: string, limit = 0): Buffer {
  return Buffer.concat([text(1, key), text(2, rangeEnd), varintField(3, limit)]);
}

/**
 * Compare: result = 1 (EQUAL is 0, left out), target = 2 (VALUE = 3),
 * key = 3, value = 7 (of the target_union oneof).
 */
export function valueEquals(key: string, value: string): Buffer {
  return Buffer.concat([varintField(2, 3), text(3, key), text(7, value)]);
}

/** RequestOp, oneof request: request_range = 1, request_put = 2. */
export function rangeOp(range: Buffer): Buffer {
  return lengthField(1, range);
}
export function putOp(put: Buffer): Buffer {
  return lengthField(2, put);
}

/** TxnRequest: compare = 1, success = 2, failure = 3, each repeated. */
export function txnRequest(compare: Buffer[], success: Buffer[], failure: Buffer[]): Buffer {
  return Buffer.concat([
    ...compare.map((c) => lengthField(1, c)),
    ...success.map((op) => lengthField(2, op)),
    ...failure.map((op) => lengthField(3, op)),
  ]);
}

/** LeaseGrantRequest: TTL = 1 (ID = 2 left out: etcd chooses). */
export function leaseGrantRequest(ttl: number): Buffer {
  return varintField(1, ttl);
}

/** LeaseRevokeRequest: ID = 1, given as the bytes of its varint. */
export function leaseRevokeRequest(id: Uint8Array): Buffer {
  return rawVarintField(1, id);
}

/** WatchRequest with create_request = 1: WatchCreateRequest key = 1, range_end = 2. */
export function watchCreateRequest(key: string, rangeEnd?: string): Buffer {
  return lengthField(1, Buffer.concat([text(1, key), text(2, rangeEnd)]));
}

/**
 * Walks the fields of one message. After `next()` returns true, `field` and
 * `wire` describe the current field and `start`..`end` its value: the bytes
 * of a varint, the payload of a length-delimited field, or the fixed bytes.
 */
export class FieldReader {
  field = 0;
  wire = 0;
  start = 0;
  end = 0;
  readonly buf: Buffer;
  #at: number;
  readonly #to: number;

  constructor(buf: Buffer, from = 0, to = buf.length) {
    this.buf = buf;
    this.#at = from;
    this.#to = to;
  }

  next(): boolean {
    if (this.#at >= this.#to) return false;
    const key = this.#varint();
    this.field = Math.floor(key / 8);
    this.wire = key % 8;
    const buf = this.buf;
    switch (this.wire) {
      case VARINT:
        this.start = this.#at;
        while (this.#at < this.#to && (buf[this.#at++]! & 0x80) !== 0);
        this.end = this.#at;
        break;
      case LENGTH: {
        const length = this.#varint();
        this.start = this.#at;
        this.end = this.#at + length;
        break;
      }
      case FIXED64:
        this.start = this.#at;
        this.end = this.#at + 8;
        break;
      case FIXED32:
        this.start = this.#at;
        this.end = this.#at + 4;
        break;
      default:
        throw new Error(`protobuf: wire type ${this.wire} of field ${this.field} is not read`);
    }
    if (this.end > this.#to) throw new Error(`protobuf: field ${this.field} runs past its message`);
    this.#at = this.end;
    return true;
  }

  /** The current varint's value; exact below 2^53. */
  number(): number {
    let value = 0;
    let scale = 1;
    for (let i = this.start; i < this.end; i++) {
      value += (this.buf[i]! & 0x7f) * scale;
      scale *= 0x80;
    }
    return value;
  }

  /** A reader of the current length-delimited field, an embedded message. */
  inner(): FieldReader {
    return new FieldReader(this.buf, this.start, this.end);
  }

  #varint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (this.#at >= this.#to) throw new Error('protobuf: a varint runs past its message');
      const byte = this.buf[this.#at++]!;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return value;
      scale *= 0x80;
    }
  }
}

/** RangeResponse: how many kvs (2) it holds, counted without decoding them. */
export function countKvs(message: Buffer): number {
  const r = new FieldReader(message);
  let count = 0;
  while (r.next()) if (r.field === 2) count++;
  return count;
}

/**
 * RangeResponse: each kv (2) as key (1) → value (5), both as UTF-8, in one
 * object: what the other implementations of readdir build.
 */
export function pairs(message: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  const r = new FieldReader(message);
  while (r.next()) {
    if (r.field !== 2) continue;
    const kv = r.inner();
    let key = '';
    let value = '';
    while (kv.next()) {
      if (kv.field === 1) key = message.toString('utf8', kv.start, kv.end);
      else if (kv.field === 5) value = message.toString('utf8', kv.start, kv.end);
    }
    out[key] = value;
  }
  return out;
}

/** RangeResponse: the value (5) of its first kv (2), as UTF-8; undefined without one. */
export function firstValue(message: Buffer): string | undefined {
  const r = new FieldReader(message);
  while (r.next()) {
    if (r.field !== 2) continue;
    const kv = r.inner();
    while (kv.next()) if (kv.field === 5) return message.toString('utf8', kv.start, kv.end);
    return '';
  }
  return undefined;
}

/** TxnResponse: succeeded (2). */
export function txnSucceeded(message: Buffer): boolean {
  const r = new FieldReader(message);
  while (r.next()) if (r.field === 2) return r.number() !== 0;
  return false;
}

/** LeaseGrantResponse: the bytes of the varint of ID (2), or undefined if absent. */
export function grantedLease(message: Buffer): Buffer | undefined {
  const r = new FieldReader(message);
  while (r.next()) if (r.field === 2) return message.subarray(r.start, r.end);
  return undefined;
}

/** What a WatchResponse says, read as far as a watcher of values needs. */
export interface WatchNews {
  /** created (3): the answer to the create request. */
  created: boolean;
  /** canceled (4), with cancel_reason (6): no more events will come. */
  canceled: string | undefined;
}

/**
 * WatchResponse: created (3), canceled (4), cancel_reason (6), and for each
 * of its events (11, Event) the value (5) of its kv (2, KeyValue), passed to
 * `onValue` as a Latin-1 string.
 */
export function readWatchResponse(message: Buffer, onValue: (value: string) => void): WatchNews {
  const news: WatchNews = { created: false, canceled: undefined };
  let canceled = false;
  let reason = '';
  const r = new FieldReader(message);
  while (r.next()) {
    if (r.field === 3) news.created = r.number() !== 0;
    else if (r.field === 4) canceled = r.number() !== 0;
    else if (r.field === 6) reason = message.toString('utf8', r.start, r.end);
    else if (r.field === 11) {
      const event = r.inner();
      while (event.next()) {
        if (event.field !== 2) continue;
        const kv = event.inner();
        while (kv.next()) if (kv.field === 5) onValue(message.toString('latin1', kv.start, kv.end));
      }
    }
  }
  if (canceled) news.canceled = reason || 'no reason given';
  return news;
}
