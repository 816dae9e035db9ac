/**
 * Errors of the registry. Like every etcdkit error they extend `EtcdError`,
 * with a literal `name` and `code`. Unknown options and a bad `ttl` or
 * `prefix` are the client's `InvalidArgumentError`, as everywhere else.
 */
import { EtcdError, type EtcdErrorOptions } from '@etcdkit/client';

/** Which part of a registration was refused. */
export type RegistrationField =
  | 'service'
  | 'id'
  | 'address'
  | 'port'
  | 'weight'
  | 'zone'
  | 'metadata'
  | 'status';

/**
 * A service name, instance ID, address, port, weight, zone, status or metadata
 * that cannot be registered. Raised before anything is written to etcd.
 */
export class InvalidRegistrationError extends EtcdError {
  override readonly name = 'InvalidRegistrationError' as const;
  override readonly code = 'ETCDKIT_INVALID_REGISTRATION' as const;
  /** The field that was refused. */
  readonly field: RegistrationField;

  constructor(field: RegistrationField, message: string, options: EtcdErrorOptions = {}) {
    super(message, options);
    this.field = field;
  }
}

/**
 * A stored value under a service's prefix that is not a registration this
 * package can read (not JSON, an unknown format version, a missing field).
 * Service sets skip such values and report them with their `invalid` event.
 */
export class MalformedInstanceError extends EtcdError {
  override readonly name = 'MalformedInstanceError' as const;
  override readonly code = 'ETCDKIT_MALFORMED_INSTANCE' as const;
  /** The key holding the value, as the client sees it. */
  readonly key: string;

  constructor(key: string, message: string, options: EtcdErrorOptions = {}) {
    super(`${key}: ${message}`, options);
    this.key = key;
  }
}

/** `ready()` gave up: no instance that is `up` appeared within its timeout. */
export class NoInstancesError extends EtcdError {
  override readonly name = 'NoInstancesError' as const;
  override readonly code = 'ETCDKIT_NO_INSTANCES' as const;
}

/** The service set was closed (by its owner, or because its client was closed). */
export class ServiceSetClosedError extends EtcdError {
  override readonly name = 'ServiceSetClosedError' as const;
  override readonly code = 'ETCDKIT_SERVICE_SET_CLOSED' as const;
}

/** The registration was deregistered; it can no longer be changed. */
export class DeregisteredError extends EtcdError {
  override readonly name = 'DeregisteredError' as const;
  override readonly code = 'ETCDKIT_DEREGISTERED' as const;
}
