/**
 * Recognising etcdkit's objects across copies of this package: npm often
 * installs two, and then `instanceof` meets a class from the other copy. Each
 * branded class carries a registry-wide symbol on its prototype and checks
 * instances by that symbol and by class name, so either copy's instances pass.
 */
import type { Etcd } from './client.js';

export const ERROR_BRAND: unique symbol = Symbol.for('etcdkit.EtcdError');
export const SESSION_BRAND: unique symbol = Symbol.for('etcdkit.Session');
export const CLIENT_BRAND: unique symbol = Symbol.for('etcdkit.Etcd');

/** A class as `isBranded` sees it: its name and prototype (its constructor may be private). */
interface BrandedClass {
  readonly name: string;
  readonly prototype: unknown;
}

/** `Class`'s own check, or: `value` carries `brand` and a class named `Class.name` is in its prototype chain. */
export function isBranded(value: unknown, brand: symbol, Class: BrandedClass): boolean {
  if (Function.prototype[Symbol.hasInstance].call(Class, value)) return true;
  if (typeof value !== 'object' || value === null || !(brand in value)) return false;
  for (let proto = Object.getPrototypeOf(value) as object | null; proto !== null; ) {
    const own = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value as
      | { name?: unknown }
      | undefined;
    if (own?.name === Class.name) return true;
    proto = Object.getPrototypeOf(proto) as object | null;
  }
  return false;
}

/** Whether `value` is an etcdkit client of any copy, told by its brand. */
export function isClient(value: unknown): value is Etcd<unknown> {
  return typeof value === 'object' && value !== null && CLIENT_BRAND in value;
}
