/** Checks of what callers pass: clients, keys and options objects. */
import { type Etcd, InvalidArgumentError, isClient } from '@etcdkit/client';

/** Checks an options object against the names a method knows. */
export function checkOptions(method: string, options: object, known: readonly string[]): void {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError(`${method}: options must be an object`);
  }
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) {
      throw new InvalidArgumentError(
        `${method}: unknown option "${name}" (known: ${known.join(', ')})`,
      );
    }
  }
}

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
