/**
 * Every error etcdkit rejects with extends `EtcdError`, which has a literal
 * `name` and `code`, a `retryable` flag read by the retry policy, and an
 * `indeterminate` flag set when a write may or may not have been applied.
 * The gateway's gRPC codes and messages are mapped to classes in one place:
 * `fromGatewayError` at the bottom of this file.
 */
import { ERROR_BRAND, isBranded } from './brand.js';

export interface EtcdErrorOptions {
  cause?: unknown;
  /** gRPC status code reported by etcd, when the error came from etcd. */
  grpcCode?: number;
  /** The request was a write that may have been applied. */
  indeterminate?: boolean;
}

export class EtcdError extends Error {
  /** True for errors of this class made by any copy of this package (see brand.ts). */
  static override [Symbol.hasInstance]<T>(
    this: abstract new (
      ...args: never[]
    ) => T,
    value: unknown,
  ): value is T {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class right of instanceof, maybe a subclass.
    return isBranded(value, ERROR_BRAND, this);
  }

  override readonly name: string = 'EtcdError';
  readonly code: string = 'ETCDKIT_ERROR';
  /** Retrying the same request may succeed (a read, or a write that never left). */
  readonly retryable: boolean = false;
  /** A write whose outcome is unknown: it may or may not have been applied. */
  readonly indeterminate: boolean;
  readonly grpcCode: number | undefined;

  constructor(message: string, options: EtcdErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.indeterminate = options.indeterminate ?? false;
    this.grpcCode = options.grpcCode;
  }
}
Object.defineProperty(EtcdError.prototype, ERROR_BRAND, { value: true });

/** Bad input caught before anything was sent, or rejected by etcd as invalid. */
export class InvalidArgumentError extends EtcdError {
  override readonly name = 'InvalidArgumentError' as const;
  override readonly code = 'ETCDKIT_INVALID_ARGUMENT' as const;
}

/** A value the codec cannot encode, or stored bytes it cannot decode. */
export class CodecError extends EtcdError {
  override readonly name = 'CodecError' as const;
  override readonly code = 'ETCDKIT_CODEC' as const;
}

/** The request exceeds etcd's `--max-request-bytes` (1.5 MiB by default). */
export class RequestTooLargeError extends EtcdError {
  override readonly name = 'RequestTooLargeError' as const;
  override readonly code = 'ETCDKIT_REQUEST_TOO_LARGE' as const;
}

/** A transaction list holds more operations than `--max-txn-ops` (128 by default). */
export class TooManyOpsError extends EtcdError {
  override readonly name = 'TooManyOpsError' as const;
  override readonly code = 'ETCDKIT_TOO_MANY_OPS' as const;
}

/** A transaction writes the same key twice. */
export class DuplicateKeyError extends EtcdError {
  override readonly name = 'DuplicateKeyError' as const;
  override readonly code = 'ETCDKIT_DUPLICATE_KEY' as const;
}

/** `ignoreValue` / `ignoreLease` on a key that does not exist. */
export class KeyNotFoundError extends EtcdError {
  override readonly name = 'KeyNotFoundError' as const;
  override readonly code = 'ETCDKIT_KEY_NOT_FOUND' as const;
}

/** The lease does not exist: never granted, revoked, or expired. */
export class LeaseNotFoundError extends EtcdError {
  override readonly name = 'LeaseNotFoundError' as const;
  override readonly code = 'ETCDKIT_LEASE_NOT_FOUND' as const;
}

/** A grant asked for a lease ID that is already in use. */
export class LeaseExistsError extends EtcdError {
  override readonly name = 'LeaseExistsError' as const;
  override readonly code = 'ETCDKIT_LEASE_EXISTS' as const;
}

/** The requested revision has been compacted away. */
export class CompactedError extends EtcdError {
  override readonly name = 'CompactedError' as const;
  override readonly code = 'ETCDKIT_COMPACTED' as const;
}

/** The requested revision is newer than the store's current revision. */
export class FutureRevisionError extends EtcdError {
  override readonly name = 'FutureRevisionError' as const;
  override readonly code = 'ETCDKIT_FUTURE_REVISION' as const;
}

/** The authenticated user may not do this. */
export class PermissionDeniedError extends EtcdError {
  override readonly name = 'PermissionDeniedError' as const;
  override readonly code = 'ETCDKIT_PERMISSION_DENIED' as const;
}

/** Authentication failed, or the auth token is invalid or expired. */
export class AuthenticationError extends EtcdError {
  override readonly name = 'AuthenticationError' as const;
  override readonly code = 'ETCDKIT_UNAUTHENTICATED' as const;
}

/** No member could serve the request: unreachable, no leader, shutting down. */
export class UnavailableError extends EtcdError {
  override readonly name = 'UnavailableError' as const;
  override readonly code = 'ETCDKIT_UNAVAILABLE' as const;
  override readonly retryable = !this.indeterminate;
}

/** The request's deadline passed. For a write, `indeterminate` is true. */
export class TimeoutError extends EtcdError {
  override readonly name = 'TimeoutError' as const;
  override readonly code = 'ETCDKIT_TIMEOUT' as const;
  override readonly retryable = !this.indeterminate;
}

/** etcd answered with something the client does not understand. */
export class ProtocolError extends EtcdError {
  override readonly name = 'ProtocolError' as const;
  override readonly code = 'ETCDKIT_PROTOCOL' as const;
}

/** Any other error etcd reported (internal, unknown, not implemented, ...). */
export class ServerError extends EtcdError {
  override readonly name = 'ServerError' as const;
  override readonly code = 'ETCDKIT_SERVER' as const;
}

/** The client was closed. */
export class ClientClosedError extends EtcdError {
  override readonly name = 'ClientClosedError' as const;
  override readonly code = 'ETCDKIT_CLIENT_CLOSED' as const;
}

// gRPC status codes used by etcd.
const INVALID_ARGUMENT = 3;
const DEADLINE_EXCEEDED = 4;
const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;
const PERMISSION_DENIED = 7;
const FAILED_PRECONDITION = 9;
const OUT_OF_RANGE = 11;
const RESOURCE_EXHAUSTED = 8;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;

type ErrorClass = new (message: string, options?: EtcdErrorOptions) => EtcdError;

/** etcd's messages that name a condition more precisely than the gRPC code. */
const BY_MESSAGE: ReadonlyArray<readonly [string, ErrorClass]> = [
  ['request is too large', RequestTooLargeError],
  ['received message larger than max', RequestTooLargeError],
  ['too many operations in txn request', TooManyOpsError],
  ['duplicate key given in txn request', DuplicateKeyError],
  ['key not found', KeyNotFoundError],
  ['requested lease not found', LeaseNotFoundError],
  ['lease already exists', LeaseExistsError],
  ['required revision has been compacted', CompactedError],
  ['required revision is a future revision', FutureRevisionError],
  ['invalid auth token', AuthenticationError],
  ['authentication failed', AuthenticationError],
  ['user name is empty', AuthenticationError],
  ['no leader', UnavailableError],
  ['leader changed', UnavailableError],
  ['not capable', UnavailableError],
  ['stopped', UnavailableError],
  // "etcdserver: request timed out" and its variants "..., possibly due to
  // previous leader failure" and "..., possibly due to connection lost".
  ['request timed out', TimeoutError],
  // A proposal that waited for a leader until etcd's own deadline (gRPC code 2).
  ['context deadline exceeded', TimeoutError],
];

/** Besides timeouts, the answers that leave a write's proposal possibly committed. */
const INDETERMINATE = ['leader changed', 'stopped'];

const BY_CODE: ReadonlyMap<number, ErrorClass> = new Map<number, ErrorClass>([
  [INVALID_ARGUMENT, InvalidArgumentError],
  [DEADLINE_EXCEEDED, TimeoutError],
  [NOT_FOUND, KeyNotFoundError],
  [ALREADY_EXISTS, InvalidArgumentError],
  [PERMISSION_DENIED, PermissionDeniedError],
  [FAILED_PRECONDITION, InvalidArgumentError],
  [OUT_OF_RANGE, FutureRevisionError],
  [RESOURCE_EXHAUSTED, RequestTooLargeError],
  [UNAVAILABLE, UnavailableError],
  [UNAUTHENTICATED, AuthenticationError],
]);

/**
 * Maps an error reported by the gateway (`{ error, code, message }`) to its class.
 * `write` marks requests that change state: a server-side timeout on one of them
 * leaves its outcome unknown.
 */
export function fromGatewayError(
  grpcCode: number,
  message: string,
  options: { write: boolean; httpStatus?: number },
): EtcdError {
  const text = message || `etcd error (gRPC code ${grpcCode})`;
  let Class: ErrorClass = ServerError;
  const byMessage = BY_MESSAGE.find(([fragment]) => text.includes(fragment));
  if (byMessage) Class = byMessage[1];
  else Class = BY_CODE.get(grpcCode) ?? ServerError;
  // A timeout, a leader change or a stop while a write was in flight leaves its
  // outcome open: the proposal may have been committed. Other answers are definite.
  const indeterminate =
    options.write && (Class === TimeoutError || INDETERMINATE.some((f) => text.includes(f)));
  return new Class(text, { grpcCode, indeterminate });
}
