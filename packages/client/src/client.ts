/**
 * `Etcd` is the client: it validates its options once, owns the transport,
 * and exposes the seed API's methods with TypeScript idioms. Each method is a
 * thin wrapper over kv.ts, txn.ts and lease.ts.
 */

import { EventEmitter } from 'eventemitter3';
import { CLIENT_BRAND } from './brand.js';
import type { Key } from './bytes.js';
import { KeySpace } from './bytes.js';
import { type Codec, type CodecName, codecByName, type JsonValue } from './codec.js';
import { Context } from './context.js';
import { createTransport } from './create-transport.js';
import type { EndpointEvents } from './endpoints.js';
import { ClientClosedError, InvalidArgumentError } from './errors.js';
import { GatewayTransport } from './gateway/gateway-transport.js';
import { HttpWatchHub } from './gateway/http-watch-hub.js';
import { KeepaliveHub } from './keepalive-hub.js';
import type { KeyValue } from './key-value.js';
import * as kv from './kv.js';
import * as lease from './lease.js';
import { Mirror } from './mirror.js';
import type { Compare, DeleteResult, Op, PutResult, RangeResult, TxnResult } from './ops.js';
import { checkOptions, type LeaseId, optionSet, toInt64 } from './options.js';
import { DEFAULT_SESSION_TTL, Session, type SessionOptions } from './session.js';
import { StreamWatchHub } from './stream-watch-hub.js';
import type {
  AuthOptions,
  CallOptions,
  TlsOptions,
  Transport,
  TransportName,
} from './transport.js';
import {
  commit,
  fromRawCompare,
  fromRawOp,
  type RawCompare,
  type RawOp,
  TxnBuilder,
} from './txn.js';
import { startWatch, type WatchOptions } from './watch.js';
import type { Watcher } from './watcher.js';
import { asArray, asObject, str } from './wire.js';

export interface EtcdOptions<V = JsonValue> {
  /** One URL or several, `http://` or `https://`. Default `http://127.0.0.1:2379`. */
  endpoints?: string | string[] | undefined;
  /** Added in front of every key sent and stripped from every key received. */
  keyPrefix?: Key | undefined;
  /** Default TTL in seconds for set, setnx and setx: each write gets a lease of this TTL. Default -1: none. */
  ttl?: number | undefined;
  /** Deadline of each call in ms; 0 disables it. Default 10,000. */
  timeout?: number | undefined;
  /**
   * How calls travel: 'gateway' (default) is etcd's JSON gateway over
   * HTTP/1.1 and WebSockets; 'grpc' is etcd's own gRPC over HTTP/2 on the same
   * client port (the seed's `use_grpc`), lighter on etcd and faster. Default:
   * the environment variable `ETCDKIT_TRANSPORT` if set, else 'gateway'.
   */
  transport?: TransportName | undefined;
  /** Gateway path prefix (`/v3`, `/v3beta`, `/v3alpha`). Default: detected from `GET /version`. Gateway only. */
  apiPrefix?: string | undefined;
  /**
   * How values are stored: 'json' (default), 'string', 'bytes', or a custom
   * codec. It decides the client's value type `V` (see `EtcdConstructor`).
   */
  codec?: CodecFor<V> | undefined;
  /** TLS settings for `https://` endpoints. */
  tls?: TlsOptions | undefined;
  /**
   * User and password for etcd's auth. The token is fetched once, shared by
   * concurrent calls, and renewed before it expires and when etcd refuses it.
   * On the gateway, with auth, watches and keepalives travel over HTTP: etcd's
   * WebSocket proxy cannot pass a token on. gRPC carries it on its streams.
   */
  auth?: AuthOptions | undefined;
  /** Refuse requests whose keys and values exceed this many bytes. Default 1.5 MiB, etcd's default. */
  maxRequestBytes?: number | undefined;
  /** Refuse transactions with more operations per branch. Default 128, etcd's default. */
  maxTxnOps?: number | undefined;
  /** Connections per endpoint. Default 32 on the gateway; gRPC multiplexes calls on one per endpoint. */
  connections?: number | undefined;
  /**
   * Learn the endpoints from the cluster's member list every this many ms
   * (`syncEndpoints()`), so members added or replaced later are used. Default: off.
   */
  autoSyncInterval?: number | undefined;
  /**
   * Lease TTL in seconds of sessions made without one: the shared session that
   * mutexes, elections and registrations use by default, and `session()`.
   * After a holder crashes, the next one gets in about this long later.
   * Default 15 (see DEFAULT_SESSION_TTL).
   */
  sessionTtl?: number | undefined;
  /** How watches travel and how a stalled watch stream is detected. */
  watch?: WatchStreamOptions | undefined;
}

/**
 * The codecs that can store values of type `V`: a `Codec<V>`, or a named codec
 * whose values include every `V` ('json' for JSON values, 'string' for
 * strings, 'bytes' for Uint8Array).
 */
export type CodecFor<V> =
  | Codec<V>
  | ([V] extends [JsonValue] ? 'json' : never)
  | ([V] extends [string] ? 'string' : never)
  | ([V] extends [Uint8Array] ? 'bytes' : never);

export interface WatchStreamOptions {
  /**
   * Gateway only. 'websocket' (default): all watchers share one socket. 'http':
   * one streaming request per watcher. gRPC always shares one Watch stream.
   */
  transport?: 'websocket' | 'http' | undefined;
  /**
   * After this many ms without a message, ask etcd for progress (over HTTP,
   * where a stream cannot carry that request, ask the member for its status). Default 10,000.
   */
  progressInterval?: number | undefined;
  /** Reconnect when that question is unanswered this many ms. Default 5,000. */
  progressTimeout?: number | undefined;
}

export const DEFAULT_PROGRESS_INTERVAL_MS = 10_000;
export const DEFAULT_PROGRESS_TIMEOUT_MS = 5_000;
const WATCH_STREAM_OPTIONS = new Set(['transport', 'progressInterval', 'progressTimeout']);

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:2379';
/** Long enough for a leader election on a loaded cluster, short enough to notice a hung member. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** etcd's default `--max-request-bytes`. */
export const DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
/** etcd's default `--max-txn-ops`. */
export const DEFAULT_MAX_TXN_OPS = 128;
export const DEFAULT_CONNECTIONS = 32;

const CLIENT_OPTIONS = new Set([
  'endpoints',
  'transport',
  'keyPrefix',
  'ttl',
  'timeout',
  'apiPrefix',
  'codec',
  'tls',
  'auth',
  'maxRequestBytes',
  'maxTxnOps',
  'connections',
  'watch',
  'autoSyncInterval',
  'sessionTtl',
]);
const CALL = optionSet();
const MIRROR_OPTIONS = new Set(['signal']);
const COMPACT_OPTIONS = optionSet('physical');

export interface VersionInfo {
  /** Version of the etcd server, e.g. "3.4.23". */
  server: string;
  /** Version of the cluster, e.g. "3.4.0". */
  cluster: string;
}

/**
 * The client. `V` is the type of the values it reads and writes, decided by
 * its codec; see `EtcdConstructor` for how `new Etcd(...)` picks it. A
 * parameter of type `Etcd<unknown>` takes a client of any value type.
 */
export class Etcd<V = JsonValue> extends EventEmitter<EndpointEvents> {
  readonly #ctx: Context<V>;
  readonly #transport: Transport;
  readonly #watchHub: StreamWatchHub | HttpWatchHub;
  readonly #keepaliveHub: KeepaliveHub;
  /** Lease TTL in seconds of sessions made without one (the shared session's too). */
  readonly sessionTtl: number;
  #shared: Promise<Session> | undefined;
  /** Every session this client created and not yet closed: `close()` ends them. */
  readonly #sessions = new Set<Session>();
  #closing: Promise<void> | undefined;
  #autoSync: NodeJS.Timeout | undefined;

  constructor(options: EtcdOptions<V> = {}) {
    super();
    checkOptions('Etcd', options, CLIENT_OPTIONS);
    const codec = resolveCodec(options.codec);
    const timeout = positiveInt(options.timeout, DEFAULT_TIMEOUT_MS, 'timeout', true);
    this.#transport = createTransport(options.transport, {
      endpoints: normaliseEndpoints(options.endpoints),
      timeout,
      apiPrefix: normaliseApiPrefix(options.apiPrefix),
      tls: options.tls,
      auth: checkAuth(options.auth),
      connections: positiveInt(options.connections, DEFAULT_CONNECTIONS, 'connections'),
    });
    const ttl = options.ttl ?? -1;
    if (!Number.isSafeInteger(ttl))
      throw new InvalidArgumentError(`ttl must be a whole number of seconds, got ${ttl}`);
    this.#ctx = new Context<V>(
      this.#transport,
      new KeySpace(options.keyPrefix),
      codec as Codec<V>,
      {
        maxRequestBytes: positiveInt(
          options.maxRequestBytes,
          DEFAULT_MAX_REQUEST_BYTES,
          'maxRequestBytes',
        ),
        maxTxnOps: positiveInt(options.maxTxnOps, DEFAULT_MAX_TXN_OPS, 'maxTxnOps'),
      },
      ttl,
    );
    const watch = options.watch ?? {};
    checkOptions('watch', watch, WATCH_STREAM_OPTIONS);
    const gateway = this.#transport instanceof GatewayTransport ? this.#transport : undefined;
    if (!gateway && watch.transport !== undefined) {
      throw new InvalidArgumentError(
        'watch.transport chooses how the gateway carries watches; gRPC has its own Watch stream',
      );
    }
    if (watch.transport === 'websocket' && options.auth) {
      throw new InvalidArgumentError(
        "watch.transport 'websocket' cannot carry an auth token through etcd's gateway: use 'http'",
      );
    }
    const timings = {
      progressInterval: positiveInt(
        watch.progressInterval,
        DEFAULT_PROGRESS_INTERVAL_MS,
        'progressInterval',
      ),
      progressTimeout: positiveInt(
        watch.progressTimeout,
        DEFAULT_PROGRESS_TIMEOUT_MS,
        'progressTimeout',
      ),
    };
    if (
      gateway &&
      (watch.transport === 'http' || (watch.transport === undefined && options.auth))
    ) {
      this.#watchHub = new HttpWatchHub(gateway, timings);
    } else if (watch.transport === undefined || watch.transport === 'websocket') {
      this.#watchHub = new StreamWatchHub(this.#transport, timings);
    } else {
      throw new InvalidArgumentError(
        `watch.transport must be 'websocket' or 'http', got ${String(watch.transport)}`,
      );
    }
    this.#keepaliveHub = new KeepaliveHub(this.#transport);
    this.sessionTtl = positiveInt(options.sessionTtl, DEFAULT_SESSION_TTL, 'sessionTtl');
    if (options.autoSyncInterval !== undefined) {
      const every = positiveInt(options.autoSyncInterval, 1, 'autoSyncInterval');
      this.#autoSync = setInterval(() => void this.syncEndpoints().catch(() => undefined), every);
      this.#autoSync.unref();
    }
    const endpoints = this.#transport.endpointSet;
    endpoints.on('endpoint-down', (url, error) => this.emit('endpoint-down', url, error));
    endpoints.on('endpoint-up', (url) => this.emit('endpoint-up', url));
  }

  /** The transport this client speaks: 'gateway' or 'grpc'. */
  get transport(): TransportName {
    return this.#transport.name;
  }

  /** The endpoints this client talks to. */
  get endpoints(): string[] {
    return this.#transport.endpoints;
  }

  /**
   * Replaces the endpoints with the client URLs of the cluster's members, as
   * the cluster reports them; returns the new list. Members without a client
   * URL of a scheme this client speaks are left out.
   */
  async syncEndpoints(options: CallOptions = {}): Promise<string[]> {
    checkOptions('syncEndpoints', options, CALL);
    const res = await this.#transport.call('cluster/member/list', {}, options, false);
    const urls = new Set<string>();
    for (const member of asArray(res.members, 'members')) {
      for (const url of asArray(asObject(member, 'member').clientURLs, 'clientURLs')) {
        const text = str(url, 'clientURL');
        if (/^https?:\/\/[^/]+\/?$/.test(text)) urls.add(new URL(text).origin);
      }
    }
    this.#transport.endpointSet.replace([...urls]);
    return this.endpoints;
  }

  /** The server's and the cluster's version. */
  async version(options: CallOptions = {}): Promise<VersionInfo> {
    checkOptions('version', options, CALL);
    const body = await this.#transport.version(options);
    return {
      server: str(body.etcdserver, 'etcdserver'),
      cluster: str(body.etcdcluster, 'etcdcluster'),
    };
  }

  /** The pair stored under `key`, or undefined. Linearizable unless `serializable`. */
  async get(key: Key, options?: kv.GetOptions): Promise<KeyValue<V> | undefined> {
    return kv.get(this.#ctx, key, options);
  }

  /** Stores `value` under `key`. */
  async set(key: Key, value: V, options?: kv.SetOptions): Promise<PutResult<V>>;
  /** With `ignoreValue: true` the stored value is kept: pass undefined as the value. */
  async set(
    key: Key,
    value: undefined,
    options: kv.SetOptions & { ignoreValue: true },
  ): Promise<PutResult<V>>;
  async set(key: Key, value: V | undefined, options?: kv.SetOptions): Promise<PutResult<V>> {
    return kv.set(this.#ctx, key, value, options);
  }

  /** Stores `value` only if `key` does not exist; otherwise returns the existing pair. */
  async setnx(key: Key, value: V, options?: kv.CreateOptions): Promise<kv.SetnxResult<V>> {
    return kv.setnx(this.#ctx, key, value, options);
  }

  /** Stores `value` only if `key` exists. */
  async setx(key: Key, value: V, options?: kv.CreateOptions): Promise<kv.SetxResult<V>> {
    return kv.setx(this.#ctx, key, value, options);
  }

  /** Deletes `key`. */
  async delete(
    key: Key,
    options?: CallOptions & { prevKv?: boolean | undefined },
  ): Promise<kv.DeleteKeyResult<V>> {
    return kv.del(this.#ctx, key, options);
  }

  /** Reads every pair whose key starts with `dir` (one request; see `range` for paging). */
  async readdir(dir: Key, options?: kv.ReaddirOptions): Promise<RangeResult<V>> {
    return kv.readdir(this.#ctx, dir, options);
  }

  /** Deletes every pair whose key starts with `dir`. */
  async rmdir(dir: Key, options?: kv.RmdirOptions): Promise<DeleteResult<V>> {
    return kv.rmdir(this.#ctx, dir, options);
  }

  /** Iterates every pair under `dir` page by page, as one snapshot at one revision. */
  range(dir: Key, options?: kv.RangeIteratorOptions): AsyncGenerator<KeyValue<V>, void, undefined> {
    return kv.range(this.#ctx, dir, options);
  }

  /** A transaction builder: `txn().if(...).success(...).failure(...).commit()`. */
  txn(): TxnBuilder<V>;
  /** The seed's form: raw comparisons and operations, committed at once. */
  txn(
    compare: RawCompare[],
    success?: RawOp[],
    failure?: RawOp[],
    options?: CallOptions,
  ): Promise<TxnResult<V>>;
  txn(
    compare?: RawCompare[],
    success?: RawOp[],
    failure?: RawOp[],
    options?: CallOptions,
  ): TxnBuilder<V> | Promise<TxnResult<V>> {
    if (compare === undefined && success === undefined && failure === undefined)
      return new TxnBuilder(this.#ctx);
    return this.#rawTxn(compare ?? [], success ?? [], failure ?? [], options);
  }

  async #rawTxn(
    compare: RawCompare[],
    success: RawOp[],
    failure: RawOp[],
    options: CallOptions | undefined,
  ) {
    for (const list of [compare, success, failure]) {
      if (!Array.isArray(list))
        throw new InvalidArgumentError('txn: compare, success and failure must be arrays');
    }
    const cmp: Compare[] = compare.map(fromRawCompare);
    const ok: Op[] = success.map(fromRawOp);
    const ko: Op[] = failure.map(fromRawOp);
    return commit(this.#ctx, cmp, ok, ko, options);
  }

  /**
   * Compacts the key-value history up to `revision`: older revisions can no
   * longer be read or watched. `physical` waits until the space is reclaimed.
   */
  async compact(
    revision: bigint,
    options: CallOptions & { physical?: boolean | undefined } = {},
  ): Promise<void> {
    checkOptions('compact', options, COMPACT_OPTIONS);
    const body: Record<string, unknown> = {
      revision: toInt64(revision, 'revision', 1n).toString(),
    };
    if (options.physical) body.physical = true;
    await this.#transport.call('kv/compaction', body, options, true);
  }

  /**
   * Grants a lease of `ttl` seconds, with an ID of your choice (a bigint, a
   * safe-integer number or a decimal string, as argument or `{ id }`) or a random one.
   */
  async grant(ttl: number, idOrOptions?: LeaseId | lease.GrantOptions): Promise<lease.Lease> {
    const options =
      idOrOptions === undefined || (typeof idOrOptions === 'object' && idOrOptions !== null)
        ? idOrOptions
        : { id: idOrOptions };
    return lease.grant(this.#ctx as Context<unknown>, ttl, options);
  }

  /** Revokes a lease; every key attached to it is deleted. */
  async revoke(id: LeaseId, options?: CallOptions): Promise<{ revision: bigint }> {
    // A closing client still sends its own sessions' revokes, but no caller's.
    if (this.#closing) throw new ClientClosedError('the client is closed');
    return lease.revoke(this.#ctx as Context<unknown>, id, options);
  }

  /** Renews a lease once. Rejects with LeaseNotFoundError if it is gone. */
  async keepalive(id: LeaseId, options?: CallOptions): Promise<lease.Lease> {
    return lease.keepalive(this.#ctx as Context<unknown>, id, options);
  }

  /** A lease's remaining TTL (and keys, with `keys: true`), or undefined when it does not exist. */
  async timetolive(
    id: LeaseId,
    options?: lease.TimeToLiveOptions,
  ): Promise<lease.LeaseInfo | undefined> {
    return lease.timetolive(this.#ctx as Context<unknown>, id, options);
  }

  /** IDs of all leases. */
  async leases(options?: CallOptions): Promise<bigint[]> {
    return lease.leases(this.#ctx as Context<unknown>, options);
  }

  /**
   * Watches one key. Resolves once etcd has created the watch; the watcher is an
   * async iterable of event batches and emits its state changes.
   */
  async watch(key: Key, options?: WatchOptions): Promise<Watcher<V>> {
    return startWatch(this.#ctx, this.#watchHub, key, false, options);
  }

  /** Watches every key that starts with `dir`. */
  async watchdir(dir: Key, options?: WatchOptions): Promise<Watcher<V>> {
    return startWatch(this.#ctx, this.#watchHub, dir, true, options);
  }

  /** Cancels a watcher (the seed's form of `watcher.cancel()`). */
  async watchcancel(watcher: Watcher<V>): Promise<void> {
    await watcher.cancel();
  }

  /**
   * A live copy of every pair under `dir`: listed at one revision, then kept
   * current by a watch from the next; after a compaction it re-lists and
   * emits only the difference. Resolves once the first listing is complete.
   */
  async mirror(dir: Key, options: { signal?: AbortSignal | undefined } = {}): Promise<Mirror<V>> {
    checkOptions('mirror', options, MIRROR_OPTIONS);
    return new Mirror(this.#ctx, this.#watchHub, dir).start(options.signal);
  }

  /** Grants a lease (or resumes one) and keeps it alive until `close()`. */
  async session(options?: SessionOptions): Promise<Session> {
    const session = await Session.create(
      this as Etcd<unknown>,
      this.#ctx as Context<unknown>,
      this.#keepaliveHub,
      options,
      this.sessionTtl,
    );
    if (this.#closing) {
      // Granted while the client was closing: nobody may hold it.
      await session.close().catch(() => undefined);
      throw new ClientClosedError('the client is closed');
    }
    this.#sessions.add(session);
    session.once('closed', () => this.#sessions.delete(session));
    return session;
  }

  /**
   * The client's shared session (default TTL), created on first use and again
   * after it is lost. Mutexes, elections and registrations use it unless given
   * their own, so one process keeps one lease alive. Closed with the client.
   */
  async sharedSession(options: CallOptions = {}): Promise<Session> {
    checkOptions('sharedSession', options, CALL);
    const current = this.#shared;
    if (current) {
      const session = await current;
      if (session.alive) return session;
      if (this.#shared === current) this.#shared = undefined;
    }
    this.#shared ??= this.session(options);
    const pending = this.#shared;
    pending.catch(() => {
      if (this.#shared === pending) this.#shared = undefined;
    });
    return pending;
  }

  /**
   * Ends everything the client started: every session it created is closed and
   * its lease revoked (so locks, leaderships and registrations on it are
   * released at once), watchers and mirrors end, keepalives stop, connections
   * close, and no timer is left to keep the process alive. Calls made from now
   * on reject with ClientClosedError. Idempotent: a second call waits for the first.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    clearInterval(this.#autoSync);
    // From here on only the revokes below go out.
    this.#transport.beginClose();
    this.#shared = undefined;
    this.#watchHub.close();
    await Promise.all(
      // A revoke that fails leaves the lease to expire by its TTL.
      [...this.#sessions].map((session) => session.close().catch(() => undefined)),
    );
    this.#sessions.clear();
    this.#keepaliveHub.close();
    await this.#transport.close();
  }

  /** @internal sockets opened so far by the watch and keepalive hubs (for tests of sharing). */
  get socketStats(): { watch: number; keepalive: number } {
    const watch =
      this.#watchHub instanceof StreamWatchHub ? this.#watchHub.socketsOpened : this.#watchHub.size;
    return { watch, keepalive: this.#keepaliveHub.socketsOpened };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * How `new Etcd(options)` and `createClient(options)` type the client by its codec:
 *
 * - json, the default: `Etcd<JsonValue>`, or `Etcd<T>` for a `T extends
 *   JsonValue` you name (`createClient<Config>()`). Writes are checked
 *   against `T`; reads are trusted to be `T`, as `JSON.parse(text) as T` is.
 * - `codec: 'string'`: `Etcd<string>`; `codec: 'bytes'`: `Etcd<Uint8Array>`.
 * - a custom `Codec<T>`: `Etcd<T>`.
 *
 * So `createClient().set('k', 10n)` does not compile: JSON cannot hold a bigint.
 */
export interface EtcdConstructor {
  new (options: EtcdOptions<string> & { codec: 'string' }): Etcd<string>;
  new (options: EtcdOptions<Uint8Array> & { codec: 'bytes' }): Etcd<Uint8Array>;
  new <T extends JsonValue = JsonValue>(options?: EtcdOptions<T>): Etcd<T>;
  /** Values that are not all JSON need a codec that takes them. */
  new <T>(options: EtcdOptions<T> & { codec: CodecFor<T> }): Etcd<T>;
  readonly prototype: Etcd<unknown>;
}

/** A client; its value type follows its codec, as for `new Etcd(options)` (see `EtcdConstructor`). */
export function createClient(options: EtcdOptions<string> & { codec: 'string' }): Etcd<string>;
export function createClient(
  options: EtcdOptions<Uint8Array> & { codec: 'bytes' },
): Etcd<Uint8Array>;
export function createClient<T extends JsonValue = JsonValue>(options?: EtcdOptions<T>): Etcd<T>;
export function createClient<T>(options: EtcdOptions<T> & { codec: CodecFor<T> }): Etcd<T>;
export function createClient<T>(options: EtcdOptions<T> = {}): Etcd<T> {
  return new Etcd(options);
}

function checkAuth(auth: AuthOptions | undefined): AuthOptions | undefined {
  if (auth === undefined) return undefined;
  checkOptions('auth', auth, AUTH_OPTIONS);
  if (typeof auth.user !== 'string' || auth.user === '' || typeof auth.password !== 'string') {
    throw new InvalidArgumentError('auth needs a non-empty user and a password string');
  }
  positiveInt(auth.refreshInterval, 1, 'auth.refreshInterval');
  return auth;
}

const AUTH_OPTIONS = new Set(['user', 'password', 'refreshInterval']);

function resolveCodec<V>(codec: CodecName | Codec<V> | undefined): Codec<unknown> {
  if (codec === undefined) return codecByName('json');
  if (typeof codec === 'string') {
    if (codec !== 'json' && codec !== 'string' && codec !== 'bytes') {
      throw new InvalidArgumentError(
        `unknown codec "${codec}": use json, string, bytes or a codec object`,
      );
    }
    return codecByName(codec);
  }
  if (typeof codec?.encode !== 'function' || typeof codec.decode !== 'function') {
    throw new InvalidArgumentError('a codec needs encode and decode functions');
  }
  return codec as Codec<unknown>;
}

function normaliseEndpoints(endpoints: string | string[] | undefined): string[] {
  const list =
    endpoints === undefined
      ? [DEFAULT_ENDPOINT]
      : Array.isArray(endpoints)
        ? endpoints
        : [endpoints];
  if (list.length === 0) throw new InvalidArgumentError('endpoints must name at least one URL');
  return list.map((endpoint) => {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new InvalidArgumentError(`endpoint ${JSON.stringify(endpoint)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new InvalidArgumentError(
        `endpoint ${endpoint}: only http:// and https:// are supported`,
      );
    }
    if (url.pathname !== '/' || url.search || url.hash) {
      throw new InvalidArgumentError(`endpoint ${endpoint}: give only scheme, host and port`);
    }
    return url.origin;
  });
}

function normaliseApiPrefix(prefix: string | undefined): string | undefined {
  if (prefix === undefined) return undefined;
  if (!/^\/[A-Za-z0-9]+$/.test(prefix)) {
    throw new InvalidArgumentError(`apiPrefix must look like "/v3", got ${JSON.stringify(prefix)}`);
  }
  return prefix;
}

function positiveInt(
  value: number | undefined,
  fallback: number,
  what: string,
  zeroAllowed = false,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0 || (value === 0 && !zeroAllowed)) {
    throw new InvalidArgumentError(
      `${what} must be a ${zeroAllowed ? 'non-negative' : 'positive'} integer, got ${value}`,
    );
  }
  return value;
}

Object.defineProperty(Etcd.prototype, CLIENT_BRAND, { value: true });
