import { Etcd as Client, type EtcdConstructor } from './client.js';
import type { JsonValue } from './codec.js';

export { type GiveUp, giveUpSignal, untilAborted } from './abort.js';
export { isClient } from './brand.js';
export { type Key, prefixEnd } from './bytes.js';
export { keepTrying } from './keep-trying.js';
/** The client class; its constructor types the client by its codec (see `EtcdConstructor`). */
export const Etcd: EtcdConstructor = Client;
export type Etcd<V = JsonValue> = Client<V>;
export {
  type CodecFor,
  createClient,
  DEFAULT_CONNECTIONS,
  DEFAULT_ENDPOINT,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_MAX_TXN_OPS,
  DEFAULT_PROGRESS_INTERVAL_MS,
  DEFAULT_PROGRESS_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  type EtcdConstructor,
  type EtcdOptions,
  type VersionInfo,
  type WatchStreamOptions,
} from './client.js';
export {
  bytesCodec,
  type Codec,
  type CodecName,
  type JsonValue,
  jsonCodec,
  stringCodec,
} from './codec.js';
export type { EndpointEvents } from './endpoints.js';
export {
  AuthenticationError,
  ClientClosedError,
  CodecError,
  CompactedError,
  DuplicateKeyError,
  EtcdError,
  type EtcdErrorOptions,
  FutureRevisionError,
  InvalidArgumentError,
  KeyNotFoundError,
  LeaseExistsError,
  LeaseNotFoundError,
  PermissionDeniedError,
  ProtocolError,
  RequestTooLargeError,
  ServerError,
  TimeoutError,
  TooManyOpsError,
  UnavailableError,
} from './errors.js';
export { NdjsonParser } from './gateway/ndjson.js';
export { jsonProblem } from './json-check.js';
export type { KeyValue } from './key-value.js';
export type {
  CreateOptions,
  DeleteKeyResult,
  GetOptions,
  RangeIteratorOptions,
  ReaddirOptions,
  RmdirOptions,
  SetnxResult,
  SetOptions,
  SetxResult,
} from './kv.js';
export {
  type GrantOptions,
  type Lease,
  type LeaseInfo,
  leaseHex,
  type TimeToLiveOptions,
} from './lease.js';
export { Mirror, type MirrorChange, type MirrorEvents } from './mirror.js';
export {
  Compare,
  type CompareOp,
  type CompareTarget,
  type DeleteOptions,
  type DeleteResult,
  Op,
  type OpResult,
  type PutOptions,
  type PutResult,
  type RangeOptions,
  type RangeResult,
  type SortOrder,
  type SortTarget,
  type TxnResult,
} from './ops.js';
export { checkOptions, type LeaseId } from './options.js';
export {
  joinQueue,
  type QueueEntry,
  queueKey,
  releasing,
  type Turn,
  type TurnOptions,
  waitForLoss,
  waitForTurn,
} from './queue.js';
export { type QueueState, QueueView } from './queue-view.js';
export {
  DEFAULT_SESSION_TTL,
  Session,
  type SessionEvents,
  SessionExpiredError,
  type SessionOptions,
} from './session.js';
export type { AuthOptions, CallOptions, TlsOptions } from './transport.js';
export type {
  RawCompare,
  RawCompareResult,
  RawCompareTarget,
  RawDeleteRange,
  RawOp,
  RawPut,
  RawRange,
  RawTxn,
  TxnBuilder,
} from './txn.js';
export type { WatchOptions } from './watch.js';
export {
  RevisionRegressedError,
  type WatchBatch,
  WatchCanceledError,
  WatchCompactedError,
  type WatchEvent,
  Watcher,
  type WatcherEvents,
  type WatchFilter,
} from './watcher.js';
