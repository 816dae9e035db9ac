import { randomBytes } from 'node:crypto';

/** A key prefix no other test uses, so tests never touch each other's keys. */
export function uniquePrefix(label = 'test'): string {
  return `/etcdkit-test/${label}-${randomBytes(4).toString('hex')}/`;
}
