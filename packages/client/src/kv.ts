/**
 * Key-value calls of the seed API: get, set, setnx, setx, delete, readdir,
 * rmdir, and `range`, a paged iterator pinned to one revision.
 *
 * A default TTL (the client's `ttl`, or `ttl` per call) makes set, setnx and
 * setx grant a lease first and attach the key to it; if the write then fails
 * or its compare does not hold, that lease is revoked, so none is left behind.
 */
import { type Key, toBase64 } from './bytes.js';
import type { Context } from './context.js';
import { InvalidArgumentError } from './errors.js';
import type { KeyValue } from './key-value.js';
import { grant, revoke } from './lease.js';
import {
  type Compare,
  type DeleteOptions,
  type DeleteResult,
  Op,
  type PutOptions,
  type PutResult,
  type RangeOptions,
  type RangeResult,
} from './ops.js';
import { checkOptions, type LeaseId, optionSet, toCount } from './options.js';
import type { CallOptions } from './transport.js';
import { type Json, optObject } from './wire.js';

export interface GetOptions extends CallOptions, Pick<RangeOptions, 'revision' | 'serializable'> {}

export interface SetOptions extends CallOptions, PutOptions {
  /** Attach the key to a new lease of this many seconds; overrides the client's `ttl`. 0: none. */
  ttl?: number | undefined;
}

export interface CreateOptions extends CallOptions {
  /** Attach the key to this lease. */
  lease?: LeaseId | undefined;
  /** Attach the key to a new lease of this many seconds; overrides the client's `ttl`. 0: none. */
  ttl?: number | undefined;
  /** Return the previous pair (setx only). */
  prevKv?: boolean | undefined;
}

export interface SetnxResult<V> {
  /** The key did not exist and was created. */
  succeeded: boolean;
  revision: bigint;
  /** The pair that already existed, when `succeeded` is false. */
  existing: KeyValue<V> | undefined;
}

export interface SetxResult<V> {
  /** The key existed and was updated. */
  succeeded: boolean;
  revision: bigint;
  /** The pair before the update, with `prevKv: true`. */
  prevKv: KeyValue<V> | undefined;
}

export interface DeleteKeyResult<V> {
  revision: bigint;
  /** 1 if the key existed, else 0. */
  deleted: number;
  /** The deleted pair, with `prevKv: true`. */
  prevKv: KeyValue<V> | undefined;
}

export interface ReaddirOptions extends CallOptions, RangeOptions {}
export interface RmdirOptions extends CallOptions, DeleteOptions {}

export interface RangeIteratorOptions extends CallOptions {
  /** Keys per request. Default 1000. */
  pageSize?: number | undefined;
  /** Read this revision; default: the revision of the first page, kept for all pages. */
  revision?: bigint | number | undefined;
  keysOnly?: boolean | undefined;
  serializable?: boolean | undefined;
}

const GET_OPTIONS = optionSet('revision', 'serializable');
const SET_OPTIONS = optionSet('lease', 'prevKv', 'ignoreValue', 'ignoreLease', 'ttl');
const CREATE_OPTIONS = optionSet('lease', 'ttl');
const SETX_OPTIONS = optionSet('lease', 'ttl', 'prevKv');
const DELETE_OPTIONS = optionSet('prevKv');
const READDIR_OPTIONS = optionSet(
  'revision',
  'limit',
  'sortOrder',
  'sortTarget',
  'keysOnly',
  'countOnly',
  'serializable',
  'minModRevision',
  'maxModRevision',
  'minCreateRevision',
  'maxCreateRevision',
);
const RANGE_OPTIONS = optionSet('pageSize', 'revision', 'keysOnly', 'serializable');
const DEFAULT_PAGE_SIZE = 1000;

function callOptions(options: CallOptions): CallOptions {
  return { signal: options.signal, timeout: options.timeout };
}

export async function get<V>(
  ctx: Context<V>,
  key: Key,
  options: GetOptions = {},
): Promise<KeyValue<V> | undefined> {
  checkOptions('get', options, GET_OPTIONS);
  const { signal: _s, timeout: _t, ...range } = options;
  const body = ctx.encoder().range({ type: 'range', key, prefix: false, options: range });
  const res = await ctx.transport.call('kv/range', body, options, false);
  return ctx.decoder.range(res).kvs[0];
}

export async function set<V>(
  ctx: Context<V>,
  key: Key,
  value: V | undefined,
  options: SetOptions = {},
): Promise<PutResult<V>> {
  checkOptions('set', options, SET_OPTIONS);
  const { signal: _s, timeout: _t, ttl: _ttl, ...put } = options;
  const encoder = ctx.encoder();
  const body = encoder.put({ type: 'put', key, value, options: put });
  encoder.checkSize();
  const ttl = put.ignoreLease || put.lease !== undefined ? 0 : effectiveTtl(ctx, options);
  return withTtlLease(ctx, ttl, body, options, async (withLease) => {
    const res = await ctx.transport.call('kv/put', withLease, callOptions(options), true);
    return { result: ctx.decoder.put(res), keep: true };
  });
}

export async function setnx<V>(
  ctx: Context<V>,
  key: Key,
  value: V,
  options: CreateOptions = {},
): Promise<SetnxResult<V>> {
  checkOptions('setnx', options, CREATE_OPTIONS);
  const guard: Compare = { target: 'createRevision', key, op: '=', operand: 0n };
  const put = Op.put(key, value, options.lease === undefined ? {} : { lease: options.lease });
  const r = await guardedPut(ctx, guard, put, Op.get(key), options);
  const current = r.results[0];
  return {
    succeeded: r.succeeded,
    revision: r.revision,
    existing: !r.succeeded && current?.type === 'range' ? current.kvs[0] : undefined,
  };
}

export async function setx<V>(
  ctx: Context<V>,
  key: Key,
  value: V,
  options: CreateOptions = {},
): Promise<SetxResult<V>> {
  checkOptions('setx', options, SETX_OPTIONS);
  const guard: Compare = { target: 'version', key, op: '>', operand: 0 };
  const putOptions: PutOptions = {};
  if (options.lease !== undefined) putOptions.lease = options.lease;
  if (options.prevKv !== undefined) putOptions.prevKv = options.prevKv;
  const r = await guardedPut(ctx, guard, Op.put(key, value, putOptions), undefined, options);
  const put = r.results[0];
  return {
    succeeded: r.succeeded,
    revision: r.revision,
    prevKv: r.succeeded && put?.type === 'put' ? put.prevKv : undefined,
  };
}

/** One txn: if `guard` holds, put; otherwise run `otherwise`. */
async function guardedPut<V>(
  ctx: Context<V>,
  guard: Compare,
  put: Op,
  otherwise: Op | undefined,
  options: CreateOptions,
) {
  const encoder = ctx.encoder();
  const body = encoder.txn([guard], [put], otherwise ? [otherwise] : []);
  encoder.checkSize();
  const ttl = options.lease !== undefined ? 0 : effectiveTtl(ctx, options);
  return withTtlLease(ctx, ttl, body, options, async (withLease) => {
    const res = await ctx.transport.call('kv/txn', withLease, callOptions(options), true);
    const result = ctx.decoder.txn(res);
    return { result, keep: result.succeeded };
  });
}

function effectiveTtl(ctx: Context<unknown>, options: { ttl?: number | undefined }): number {
  const ttl = options.ttl ?? ctx.ttl;
  if (!Number.isSafeInteger(ttl))
    throw new InvalidArgumentError(`ttl must be a whole number of seconds, got ${ttl}`);
  return Math.max(ttl, 0);
}

/**
 * With `ttl` > 0: grants a lease, sets it on the put inside `body`, and runs the
 * write. When the write fails or `keep` is false the lease is revoked.
 */
async function withTtlLease<R>(
  ctx: Context<unknown>,
  ttl: number,
  body: Json,
  options: CallOptions,
  write: (body: Json) => Promise<{ result: R; keep: boolean }>,
): Promise<R> {
  if (ttl === 0) return (await write(body)).result;
  const lease = await grant(ctx, ttl, callOptions(options));
  attachLease(body, lease.id);
  let keep = false;
  try {
    const outcome = await write(body);
    keep = outcome.keep;
    return outcome.result;
  } finally {
    if (!keep) await revoke(ctx, lease.id).catch(() => undefined);
  }
}

/** Sets the lease on a put body, or on the first put of a txn's success branch. */
function attachLease(body: Json, id: bigint): void {
  const success = Array.isArray(body.success) ? (body.success[0] as Json | undefined) : undefined;
  const put = success ? optObject(success.request_put, 'request_put') : body;
  if (put) put.lease = id.toString();
}

export async function del<V>(
  ctx: Context<V>,
  key: Key,
  options: CallOptions & DeleteOptions = {},
): Promise<DeleteKeyResult<V>> {
  checkOptions('delete', options, DELETE_OPTIONS);
  const { signal: _s, timeout: _t, ...opts } = options;
  const body = ctx.encoder().delete({ type: 'delete', key, prefix: false, options: opts });
  const res = await ctx.transport.call('kv/deleterange', body, options, true);
  const r = ctx.decoder.delete(res);
  return { revision: r.revision, deleted: r.deleted, prevKv: r.prevKvs[0] };
}

export async function readdir<V>(
  ctx: Context<V>,
  dir: Key,
  options: ReaddirOptions = {},
): Promise<RangeResult<V>> {
  checkOptions('readdir', options, READDIR_OPTIONS);
  const { signal: _s, timeout: _t, ...range } = options;
  const body = ctx.encoder().range({ type: 'range', key: dir, prefix: true, options: range });
  return ctx.decoder.range(await ctx.transport.call('kv/range', body, options, false));
}

export async function rmdir<V>(
  ctx: Context<V>,
  dir: Key,
  options: RmdirOptions = {},
): Promise<DeleteResult<V>> {
  checkOptions('rmdir', options, DELETE_OPTIONS);
  const { signal: _s, timeout: _t, ...opts } = options;
  const body = ctx.encoder().delete({ type: 'delete', key: dir, prefix: true, options: opts });
  return ctx.decoder.delete(await ctx.transport.call('kv/deleterange', body, options, true));
}

/**
 * Every pair under `dir`, fetched `pageSize` at a time. All pages are read at
 * the revision of the first one, so the whole iteration is one consistent
 * snapshot; if that revision is compacted meanwhile, it fails with CompactedError.
 */
export async function* range<V>(
  ctx: Context<V>,
  dir: Key,
  options: RangeIteratorOptions = {},
  onSnapshot?: (revision: bigint) => void,
): AsyncGenerator<KeyValue<V>, void, undefined> {
  checkOptions('range', options, RANGE_OPTIONS);
  const pageSize = toCount(options.pageSize ?? DEFAULT_PAGE_SIZE, 'pageSize');
  if (pageSize === 0) throw new InvalidArgumentError('pageSize must be at least 1');
  const rangeOptions: RangeOptions = { limit: pageSize };
  if (options.keysOnly !== undefined) rangeOptions.keysOnly = options.keysOnly;
  if (options.serializable !== undefined) rangeOptions.serializable = options.serializable;
  if (options.revision !== undefined) rangeOptions.revision = options.revision;
  const body = ctx
    .encoder()
    .range({ type: 'range', key: dir, prefix: true, options: rangeOptions });
  const call = callOptions(options);
  for (;;) {
    const page = ctx.decoder.range(await ctx.transport.call('kv/range', body, call, false));
    // Pin every later page to the first page's revision.
    if (body.revision === undefined) {
      body.revision = page.revision.toString();
      onSnapshot?.(page.revision);
    }
    yield* page.kvs;
    const last = page.kvs.at(-1);
    if (!page.more || !last) return;
    // Continue just after the last key: its full bytes followed by a zero byte.
    const prefix = ctx.keys.prefix;
    const next = new Uint8Array(prefix.length + last.keyBytes.length + 1);
    next.set(prefix, 0);
    next.set(last.keyBytes, prefix.length);
    body.key = toBase64(next);
  }
}
