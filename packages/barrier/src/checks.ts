/** Checks of what callers pass: clients and keys. */
import { type Etcd, InvalidArgumentError, isClient } from '@etcdkit/client';

/** Checks a barrier key: a non-empty string that does not end with "/". */
export function checkKey(kind: string, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new InvalidArgumentError(`${kind} key must be a non-empty string`);
  }
  if (key.endsWith('/')) {
    throw new InvalidArgumentError(`${kind} key must not end with "/"`);
  }
  return key;
}

/** Checks the client a barrier works through (of any copy of the client package). */
export function checkClient(kind: string, etcd: unknown): Etcd<unknown> {
  if (isClient(etcd)) return etcd as Etcd<unknown>;
  throw new InvalidArgumentError(`new ${kind}(etcd, ...): etcd must be an Etcd client`);
}

/** The options of calls that take nothing but a signal. */
export const SIGNAL_ONLY: ReadonlySet<string> = new Set(['signal']);
