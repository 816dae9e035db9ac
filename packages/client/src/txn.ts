/**
 * Transactions: a typed builder, and the seed's raw `txn(compare, success,
 * failure)` form. Both become the same descriptors (see ops.ts), so they are
 * encoded and decoded by the same code.
 *
 *   const r = await etcd.txn()
 *     .if(Compare.value('config', '=', old))
 *     .success(Op.put('config', next))
 *     .failure(Op.get('config'))
 *     .commit();
 *
 * The builder has no `then` method on purpose: it is not a promise.
 */
import type { Key } from './bytes.js';
import type { Context } from './context.js';
import { InvalidArgumentError } from './errors.js';
import { type Compare, type CompareOp, type CompareTarget, Op, type TxnResult } from './ops.js';
import { checkOptions, optionSet } from './options.js';
import type { CallOptions } from './transport.js';

const CALL = optionSet();

export async function commit<V>(
  ctx: Context<V>,
  compare: readonly Compare[],
  success: readonly Op[],
  failure: readonly Op[],
  options: CallOptions = {},
): Promise<TxnResult<V>> {
  checkOptions('txn', options, CALL);
  const encoder = ctx.encoder();
  const body = encoder.txn(compare, success, failure);
  encoder.checkSize();
  const write = success.some(writes) || failure.some(writes);
  return ctx.decoder.txn(await ctx.transport.call('kv/txn', body, options, write));
}

function writes(op: Op): boolean {
  if (op.type === 'txn') return op.success.some(writes) || op.failure.some(writes);
  return op.type !== 'range';
}

export class TxnBuilder<V> {
  readonly #ctx: Context<V>;
  readonly #compare: Compare[] = [];
  readonly #success: Op[] = [];
  readonly #failure: Op[] = [];

  constructor(ctx: Context<V>) {
    this.#ctx = ctx;
  }

  /** Comparisons that must all hold for `success` to run. */
  if(...compare: Compare[]): this {
    this.#compare.push(...compare);
    return this;
  }

  /** Operations run when every comparison holds. */
  success(...ops: Op[]): this {
    this.#success.push(...ops);
    return this;
  }

  /** Operations run when a comparison fails. */
  failure(...ops: Op[]): this {
    this.#failure.push(...ops);
    return this;
  }

  /** The transaction as an operation, to nest inside another one. */
  toOp(): Op {
    return Op.txn([...this.#compare], [...this.#success], [...this.#failure]);
  }

  commit(options: CallOptions = {}): Promise<TxnResult<V>> {
    return commit(this.#ctx, this.#compare, this.#success, this.#failure, options);
  }
}

// The seed's raw form. Keys are plain strings or bytes here (not base64), and
// values go through the client's codec, as everywhere else.

export type RawCompareTarget = 'VALUE' | 'VERSION' | 'CREATE' | 'MOD' | 'LEASE';
export type RawCompareResult = 'EQUAL' | 'NOT_EQUAL' | 'LESS' | 'GREATER';

export interface RawCompare {
  target: RawCompareTarget;
  key: Key;
  /** Default EQUAL. */
  result?: RawCompareResult | undefined;
  value?: unknown;
  version?: number | bigint | undefined;
  createRevision?: number | bigint | undefined;
  modRevision?: number | bigint | undefined;
  lease?: bigint | undefined;
}

export interface RawRange {
  key: Key;
  /** Read every key that starts with `key`. */
  prefix?: boolean | undefined;
  revision?: bigint | number | undefined;
  limit?: number | undefined;
  keysOnly?: boolean | undefined;
  countOnly?: boolean | undefined;
  serializable?: boolean | undefined;
}

export interface RawPut {
  key: Key;
  value?: unknown;
  lease?: bigint | undefined;
  prevKv?: boolean | undefined;
  ignoreValue?: boolean | undefined;
  ignoreLease?: boolean | undefined;
}

export interface RawDeleteRange {
  key: Key;
  prefix?: boolean | undefined;
  prevKv?: boolean | undefined;
}

export interface RawTxn {
  compare?: RawCompare[] | undefined;
  success?: RawOp[] | undefined;
  failure?: RawOp[] | undefined;
}

export type RawOp =
  | { requestRange: RawRange }
  | { requestPut: RawPut }
  | { requestDeleteRange: RawDeleteRange }
  | { requestTxn: RawTxn };

const RAW_TARGETS: Record<RawCompareTarget, [CompareTarget, keyof RawCompare]> = {
  VALUE: ['value', 'value'],
  VERSION: ['version', 'version'],
  CREATE: ['createRevision', 'createRevision'],
  MOD: ['modRevision', 'modRevision'],
  LEASE: ['lease', 'lease'],
};
const RAW_RESULTS: Record<RawCompareResult, CompareOp> = {
  EQUAL: '=',
  NOT_EQUAL: '!=',
  LESS: '<',
  GREATER: '>',
};
const RAW_COMPARE_FIELDS = new Set([
  'target',
  'key',
  'result',
  'value',
  'version',
  'createRevision',
  'modRevision',
  'lease',
]);
const RAW_OP_FIELDS = new Set(['requestRange', 'requestPut', 'requestDeleteRange', 'requestTxn']);
const RAW_TXN_FIELDS = new Set(['compare', 'success', 'failure']);

export function fromRawCompare(raw: RawCompare): Compare {
  checkOptions('txn compare', raw, RAW_COMPARE_FIELDS);
  const target = RAW_TARGETS[raw.target];
  if (!target) throw new InvalidArgumentError(`txn compare: unknown target ${String(raw.target)}`);
  const op = RAW_RESULTS[raw.result ?? 'EQUAL'];
  if (!op) throw new InvalidArgumentError(`txn compare: unknown result ${String(raw.result)}`);
  // proto3 leaves zero operands out, so a missing number means 0.
  const operand = raw[target[1]] ?? (target[0] === 'value' ? undefined : 0n);
  return { target: target[0], key: raw.key, op, operand };
}

export function fromRawOp(raw: RawOp): Op {
  checkOptions('txn operation', raw, RAW_OP_FIELDS);
  const names = Object.keys(raw);
  if (names.length !== 1)
    throw new InvalidArgumentError('a txn operation has exactly one request field');
  if ('requestRange' in raw) {
    const { key, prefix, ...options } = raw.requestRange;
    return prefix ? Op.readdir(key, options) : Op.get(key, options);
  }
  if ('requestPut' in raw) {
    const { key, value, ...options } = raw.requestPut;
    // As in the seed, a put without a value (and without ignoreValue) stores an empty value.
    if (!('value' in raw.requestPut) && !options.ignoreValue) {
      return { type: 'put', key, value, options, raw: new Uint8Array(0) };
    }
    return Op.put(key, value, options);
  }
  if ('requestDeleteRange' in raw) {
    const { key, prefix, ...options } = raw.requestDeleteRange;
    return prefix ? Op.rmdir(key, options) : Op.delete(key, options);
  }
  return fromRawTxn(raw.requestTxn);
}

export function fromRawTxn(raw: RawTxn): Op {
  checkOptions('requestTxn', raw, RAW_TXN_FIELDS);
  return Op.txn(
    (raw.compare ?? []).map(fromRawCompare),
    (raw.success ?? []).map(fromRawOp),
    (raw.failure ?? []).map(fromRawOp),
  );
}
