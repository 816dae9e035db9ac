/**
 * Operations and comparisons as plain descriptors, and the one encoder and
 * decoder that turn them into gateway JSON and back. The KV methods and
 * transactions both go through here, so a put is encoded the same way whether
 * it is sent alone or inside a nested txn.
 */
import { type Key, type KeySpace, toBase64, toBytes } from './bytes.js';
import type { Codec } from './codec.js';
import {
  InvalidArgumentError,
  ProtocolError,
  RequestTooLargeError,
  TooManyOpsError,
} from './errors.js';
import { decodeKeyValue, decodeKeyValues, type KeyValue } from './key-value.js';
import { checkOptions, type LeaseId, toBool, toCount, toInt64, toLeaseId } from './options.js';
import { asArray, asObject, bool, headerRevision, type Json, optObject, smallInt } from './wire.js';

export type SortOrder = 'none' | 'ascend' | 'descend';
export type SortTarget = 'key' | 'version' | 'createRevision' | 'modRevision' | 'value';

export interface RangeOptions {
  /** Read at this revision instead of the newest (must not be compacted). */
  revision?: bigint | number | undefined;
  /** At most this many keys; 0 means no limit. */
  limit?: number | undefined;
  /** Sort order; the seed's 0, 1, 2 are accepted too. Default: by key, ascending. */
  sortOrder?: SortOrder | 0 | 1 | 2 | undefined;
  /** Field to sort by; the seed's 0 to 4 are accepted too. */
  sortTarget?: SortTarget | 0 | 1 | 2 | 3 | 4 | undefined;
  /** Return keys without values. */
  keysOnly?: boolean | undefined;
  /** Return only the count of keys. */
  countOnly?: boolean | undefined;
  /** Serve from the local member without a quorum round: faster, maybe stale. */
  serializable?: boolean | undefined;
  /** Only keys last modified at or after this revision. */
  minModRevision?: bigint | number | undefined;
  /** Only keys last modified at or before this revision. */
  maxModRevision?: bigint | number | undefined;
  /** Only keys created at or after this revision. */
  minCreateRevision?: bigint | number | undefined;
  /** Only keys created at or before this revision. */
  maxCreateRevision?: bigint | number | undefined;
}

const REVISION_FILTERS = [
  ['minModRevision', 'min_mod_revision'],
  ['maxModRevision', 'max_mod_revision'],
  ['minCreateRevision', 'min_create_revision'],
  ['maxCreateRevision', 'max_create_revision'],
] as const;

export interface PutOptions {
  /** Attach the key to this lease. */
  lease?: LeaseId | undefined;
  /** Return the previous key-value pair. */
  prevKv?: boolean | undefined;
  /** Keep the current value (the key must exist); pass `undefined` as the value. */
  ignoreValue?: boolean | undefined;
  /** Keep the current lease (the key must exist). */
  ignoreLease?: boolean | undefined;
}

export interface DeleteOptions {
  /** Return the deleted key-value pairs. */
  prevKv?: boolean | undefined;
}

export type CompareOp = '=' | '!=' | '<' | '>';
export type CompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision' | 'lease';

export interface Compare {
  readonly target: CompareTarget;
  readonly key: Key;
  readonly op: CompareOp;
  readonly operand: unknown;
  /** Compare every key that starts with `key` (see `Compare.dir`). */
  readonly prefix?: boolean | undefined;
}

export type Op =
  | {
      readonly type: 'range';
      readonly key: Key;
      readonly prefix: boolean;
      readonly options: RangeOptions;
    }
  | {
      readonly type: 'put';
      readonly key: Key;
      readonly value: unknown;
      readonly options: PutOptions;
      /** Stored as is, bypassing the codec (the seed's put without a value stores empty bytes). */
      readonly raw?: Uint8Array;
    }
  | {
      readonly type: 'delete';
      readonly key: Key;
      readonly prefix: boolean;
      readonly options: DeleteOptions;
    }
  | {
      readonly type: 'txn';
      readonly compare: readonly Compare[];
      readonly success: readonly Op[];
      readonly failure: readonly Op[];
    };

const RANGE_OPTIONS = new Set([
  'revision',
  'limit',
  'sortOrder',
  'sortTarget',
  'keysOnly',
  'countOnly',
  'serializable',
  ...REVISION_FILTERS.map(([name]) => name),
]);
const PUT_OPTIONS = new Set(['lease', 'prevKv', 'ignoreValue', 'ignoreLease']);
const DELETE_OPTIONS = new Set(['prevKv']);

/** Builders of comparisons for `txn().if(...)`. */
export const Compare = {
  value: (key: Key, op: CompareOp, value: unknown): Compare => ({
    target: 'value',
    key,
    op,
    operand: value,
  }),
  version: (key: Key, op: CompareOp, version: number | bigint): Compare => ({
    target: 'version',
    key,
    op,
    operand: version,
  }),
  createRevision: (key: Key, op: CompareOp, revision: bigint | number): Compare => ({
    target: 'createRevision',
    key,
    op,
    operand: revision,
  }),
  modRevision: (key: Key, op: CompareOp, revision: bigint | number): Compare => ({
    target: 'modRevision',
    key,
    op,
    operand: revision,
  }),
  lease: (key: Key, op: CompareOp, lease: bigint): Compare => ({
    target: 'lease',
    key,
    op,
    operand: lease,
  }),
  /**
   * `compare` applied to every key that starts with its key (etcd's
   * `range_end`): it holds only if it holds for each of them. With no key
   * under the prefix it is judged on an absent key (create revision, mod
   * revision, version and lease 0), so
   * `Compare.dir(Compare.createRevision('queue/', '=', 0))` holds exactly when
   * nothing is under `queue/`; a value comparison then fails.
   */
  dir: (compare: Compare): Compare => ({ ...compare, prefix: true }),
};

/** Builders of operations for transactions. */
export const Op = {
  get: (key: Key, options: RangeOptions = {}): Op => ({
    type: 'range',
    key,
    prefix: false,
    options,
  }),
  readdir: (dir: Key, options: RangeOptions = {}): Op => ({
    type: 'range',
    key: dir,
    prefix: true,
    options,
  }),
  put: (key: Key, value: unknown, options: PutOptions = {}): Op => ({
    type: 'put',
    key,
    value,
    options,
  }),
  /** A put of bytes (or UTF-8 text) stored as they are, whatever the client's codec. */
  putRaw: (key: Key, value: Uint8Array | string, options: PutOptions = {}): Op => ({
    type: 'put',
    key,
    value: undefined,
    options,
    raw: typeof value === 'string' ? Buffer.from(value, 'utf8') : value,
  }),
  delete: (key: Key, options: DeleteOptions = {}): Op => ({
    type: 'delete',
    key,
    prefix: false,
    options,
  }),
  rmdir: (dir: Key, options: DeleteOptions = {}): Op => ({
    type: 'delete',
    key: dir,
    prefix: true,
    options,
  }),
  txn: (
    compare: readonly Compare[],
    success: readonly Op[] = [],
    failure: readonly Op[] = [],
  ): Op => ({
    type: 'txn',
    compare,
    success,
    failure,
  }),
};

const TARGETS: Record<CompareTarget, [wire: string, field: string]> = {
  value: ['VALUE', 'value'],
  version: ['VERSION', 'version'],
  createRevision: ['CREATE', 'create_revision'],
  modRevision: ['MOD', 'mod_revision'],
  lease: ['LEASE', 'lease'],
};
const RESULTS: Record<CompareOp, string> = {
  '=': 'EQUAL',
  '!=': 'NOT_EQUAL',
  '<': 'LESS',
  '>': 'GREATER',
};
const SORT_ORDERS = ['NONE', 'ASCEND', 'DESCEND'] as const;
const SORT_ORDER_NAMES: Record<string, string> = {
  none: 'NONE',
  ascend: 'ASCEND',
  descend: 'DESCEND',
};
const SORT_TARGETS = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'] as const;
const SORT_TARGET_NAMES: Record<string, string> = {
  key: 'KEY',
  version: 'VERSION',
  createRevision: 'CREATE',
  modRevision: 'MOD',
  value: 'VALUE',
};

export interface EncoderLimits {
  maxRequestBytes: number;
  maxTxnOps: number;
}

/**
 * Encodes descriptors into gateway JSON for one request, counting the bytes of
 * keys and values so an oversized request is refused before it is sent.
 */
export class Encoder {
  #bytes = 0;

  constructor(
    readonly keys: KeySpace,
    readonly codec: Codec<unknown>,
    readonly limits: EncoderLimits,
  ) {}

  /** Call after encoding a request: refuses it if its keys and values exceed the limit. */
  checkSize(): void {
    if (this.#bytes > this.limits.maxRequestBytes) {
      throw new RequestTooLargeError(
        `the request carries ${this.#bytes} bytes of keys and values, over the limit of ` +
          `${this.limits.maxRequestBytes} (etcd's --max-request-bytes)`,
      );
    }
  }

  #key(key: Key, prefix: boolean): { key: string; range_end?: string } {
    if (!prefix) {
      const bytes = this.keys.key(key);
      this.#bytes += bytes.length;
      return { key: toBase64(bytes) };
    }
    const range = this.keys.dir(key);
    this.#bytes += range.key.length + range.end.length;
    return { key: toBase64(range.key), range_end: toBase64(range.end) };
  }

  #value(value: unknown): string {
    const bytes = this.codec.encode(value);
    this.#bytes += bytes.length;
    return toBase64(bytes);
  }

  range(op: Extract<Op, { type: 'range' }>): Json {
    const o = op.options;
    checkOptions(op.prefix ? 'readdir' : 'get', o, RANGE_OPTIONS);
    const body: Json = this.#key(op.key, op.prefix);
    // As in the seed, a revision <= 0 means the newest.
    if (o.revision !== undefined) {
      const revision = toInt64(o.revision, 'revision', -0x7fff_ffff_ffff_ffffn);
      if (revision > 0n) body.revision = revision.toString();
    }
    if (o.limit !== undefined) body.limit = toCount(o.limit, 'limit').toString();
    if (o.sortOrder !== undefined)
      body.sort_order = enumValue(o.sortOrder, SORT_ORDERS, SORT_ORDER_NAMES, 'sortOrder');
    if (o.sortTarget !== undefined) {
      body.sort_target = enumValue(o.sortTarget, SORT_TARGETS, SORT_TARGET_NAMES, 'sortTarget');
    }
    if (toBool(o.keysOnly, 'keysOnly')) body.keys_only = true;
    if (toBool(o.countOnly, 'countOnly')) body.count_only = true;
    if (toBool(o.serializable, 'serializable')) body.serializable = true;
    if (body.count_only && REVISION_FILTERS.some(([name]) => o[name] !== undefined)) {
      // etcd counts the whole range before it applies these filters.
      throw new InvalidArgumentError(
        'countOnly cannot be combined with revision filters: etcd would count keys the filters exclude',
      );
    }
    for (const [name, wire] of REVISION_FILTERS) {
      const value = o[name];
      if (value !== undefined) body[wire] = toInt64(value, name).toString();
    }
    return body;
  }

  put(op: Extract<Op, { type: 'put' }>): Json {
    const o = op.options;
    checkOptions('put', o, PUT_OPTIONS);
    const body: Json = this.#key(op.key, false);
    const ignoreValue = toBool(o.ignoreValue, 'ignoreValue');
    const ignoreLease = toBool(o.ignoreLease, 'ignoreLease');
    if (ignoreValue) {
      if (op.value !== undefined)
        throw new InvalidArgumentError('ignoreValue keeps the stored value: pass undefined');
      body.ignore_value = true;
    } else if (op.raw) {
      this.#bytes += op.raw.length;
      body.value = toBase64(op.raw);
    } else {
      body.value = this.#value(op.value);
    }
    if (o.lease !== undefined) {
      if (ignoreLease) throw new InvalidArgumentError('lease and ignoreLease cannot be combined');
      const lease = toLeaseId(o.lease, 'lease');
      if (lease !== 0n) body.lease = lease.toString();
    }
    if (ignoreLease) body.ignore_lease = true;
    if (toBool(o.prevKv, 'prevKv')) body.prev_kv = true;
    return body;
  }

  delete(op: Extract<Op, { type: 'delete' }>): Json {
    checkOptions(op.prefix ? 'rmdir' : 'delete', op.options, DELETE_OPTIONS);
    const body: Json = this.#key(op.key, op.prefix);
    if (op.prefix && this.keys.prefix.length === 0 && toBytes(op.key).length === 0) {
      throw new InvalidArgumentError('rmdir of an empty prefix would delete every key: refused');
    }
    if (toBool(op.options.prevKv, 'prevKv')) body.prev_kv = true;
    return body;
  }

  compare(c: Compare): Json {
    const entry = TARGETS[c.target];
    const result = RESULTS[c.op];
    if (!entry) throw new InvalidArgumentError(`unknown compare target ${String(c.target)}`);
    if (!result)
      throw new InvalidArgumentError(`unknown compare operator ${String(c.op)}: use = != < >`);
    const body: Json = { target: entry[0], result, ...this.#key(c.key, c.prefix === true) };
    body[entry[1]] =
      c.target === 'value'
        ? this.#value(c.operand)
        : toInt64(c.operand, `compare ${c.target}`).toString();
    return body;
  }

  txn(compare: readonly Compare[], success: readonly Op[], failure: readonly Op[]): Json {
    const ops = Math.max(compare.length, success.length, failure.length);
    if (ops > this.limits.maxTxnOps) {
      throw new TooManyOpsError(
        `a txn list holds ${ops} operations, over the limit of ${this.limits.maxTxnOps} (etcd's --max-txn-ops)`,
      );
    }
    return {
      compare: compare.map((c) => this.compare(c)),
      success: success.map((op) => this.requestOp(op)),
      failure: failure.map((op) => this.requestOp(op)),
    };
  }

  requestOp(op: Op): Json {
    switch (op.type) {
      case 'range':
        return { request_range: this.range(op) };
      case 'put':
        return { request_put: this.put(op) };
      case 'delete':
        return { request_delete_range: this.delete(op) };
      case 'txn':
        return { request_txn: this.txn(op.compare, op.success, op.failure) };
      default:
        throw new InvalidArgumentError(`unknown operation ${JSON.stringify(op)}`);
    }
  }
}

function enumValue(
  value: unknown,
  byIndex: readonly string[],
  byName: Record<string, string>,
  what: string,
): string {
  const wire =
    typeof value === 'number'
      ? byIndex[value]
      : typeof value === 'string'
        ? byName[value]
        : undefined;
  if (wire === undefined) {
    throw new InvalidArgumentError(
      `${what} must be one of ${Object.keys(byName).join(', ')}, got ${String(value)}`,
    );
  }
  return wire;
}

export interface RangeResult<V> {
  kvs: KeyValue<V>[];
  /** Number of keys in the range (not limited by `limit`). */
  count: number;
  /** More keys exist beyond `limit`. */
  more: boolean;
  /** The store's revision the read was served at. */
  revision: bigint;
}

export interface PutResult<V> {
  revision: bigint;
  /** The pair before the put, with `prevKv: true` and when it existed. */
  prevKv: KeyValue<V> | undefined;
}

export interface DeleteResult<V> {
  revision: bigint;
  /** Number of keys deleted. */
  deleted: number;
  /** The deleted pairs, with `prevKv: true`. */
  prevKvs: KeyValue<V>[];
}

export interface TxnResult<V> {
  revision: bigint;
  /** Whether every comparison held (and `success` ran rather than `failure`). */
  succeeded: boolean;
  /** One result per operation of the branch that ran. */
  results: OpResult<V>[];
}

export type OpResult<V> =
  | ({ type: 'range' } & RangeResult<V>)
  | ({ type: 'put' } & PutResult<V>)
  | ({ type: 'delete' } & DeleteResult<V>)
  | ({ type: 'txn' } & TxnResult<V>);

/** Decodes gateway responses into etcdkit's result types. */
export class Decoder<V> {
  constructor(
    readonly keys: KeySpace,
    readonly codec: Codec<V>,
  ) {}

  range(body: Json): RangeResult<V> {
    return {
      kvs: decodeKeyValues(body.kvs, this.keys, this.codec),
      count: smallInt(body.count, 'count'),
      more: bool(body.more),
      revision: headerRevision(body),
    };
  }

  put(body: Json): PutResult<V> {
    const prev = optObject(body.prev_kv, 'prev_kv');
    return {
      revision: headerRevision(body),
      prevKv: prev ? decodeKeyValue(prev, this.keys, this.codec) : undefined,
    };
  }

  delete(body: Json): DeleteResult<V> {
    return {
      revision: headerRevision(body),
      deleted: smallInt(body.deleted, 'deleted'),
      prevKvs: decodeKeyValues(body.prev_kvs, this.keys, this.codec),
    };
  }

  /** `revision` is the outer header's: nested responses may carry none. */
  txn(body: Json, revision = headerRevision(body)): TxnResult<V> {
    return {
      revision,
      succeeded: bool(body.succeeded),
      results: asArray(body.responses, 'responses').map((item) =>
        this.#response(asObject(item, 'response'), revision),
      ),
    };
  }

  #response(item: Json, revision: bigint): OpResult<V> {
    if (item.response_range)
      return { type: 'range', ...this.range(asObject(item.response_range, 'range')) };
    if (item.response_put) return { type: 'put', ...this.put(asObject(item.response_put, 'put')) };
    if (item.response_delete_range) {
      return { type: 'delete', ...this.delete(asObject(item.response_delete_range, 'delete')) };
    }
    if (item.response_txn)
      return { type: 'txn', ...this.txn(asObject(item.response_txn, 'txn'), revision) };
    throw new ProtocolError(`unknown txn response ${JSON.stringify(item)}`);
  }
}
