/**
 * A `ServiceSet` is the live set of a service's instances, for consumers.
 *
 * How it works: it follows the service's directory with the client's mirror
 * (list at one revision, then watch from the next; after a compaction the
 * mirror lists again and reports only the difference). Each pair is decoded
 * by the wire contract; an undecodable one is skipped and reported. Should the
 * mirror itself fail (the cluster replaced, a re-list that found no member),
 * the set opens a new mirror with backoff and applies the difference between
 * what it holds and the fresh listing, so consumers always converge to the
 * stored set and see each change once, as `added`, `updated` or `removed`.
 * Picking chooses among healthy instances not ejected by this consumer
 * (candidates.ts, ejection.ts).
 */
import type { CallOptions, Etcd, KeyValue, Mirror } from '@etcdkit/client';
import { ClientClosedError, TimeoutError } from '@etcdkit/client';
import { EventEmitter } from 'eventemitter3';
import { backoff, sleep } from './backoff.js';
import { chooseCandidates, PICK_OPTIONS, type PickOptions } from './candidates.js';
import { Channel } from './channel.js';
import { type EjectionOptions, Ejections } from './ejection.js';
import { MalformedInstanceError, ServiceSetClosedError } from './errors.js';
import { decodeInstance, type ServiceInstance } from './instance.js';
import { checkPicker, type Picker, type PickStrategy, pickerFor } from './pickers.js';
import { type ReadyOptions, waitReady } from './ready.js';
import { checkOptions } from './validate.js';

export type ServiceChange =
  | { type: 'added'; instance: ServiceInstance }
  | { type: 'updated'; instance: ServiceInstance; previous: ServiceInstance }
  | { type: 'removed'; instance: ServiceInstance };

export interface ServiceSetEvents {
  added: [instance: ServiceInstance];
  updated: [instance: ServiceInstance, previous: ServiceInstance];
  removed: [instance: ServiceInstance];
  /** A stored value could not be read as an instance; it is left out of the set. */
  invalid: [error: MalformedInstanceError];
  /** The set was listed again (after a compaction or a failure) and matches the store at `revision`. */
  resynced: [revision: bigint];
  /** Following the store failed; the set keeps its contents and is being listed again. */
  interrupted: [error: Error];
  /** The set stopped following the store: closed, or its client was closed. */
  closed: [];
  /** `noteError()` ejected the instance from this consumer's picks for a while. */
  ejected: [instance: ServiceInstance];
}

/** Options of `registry.discover()` that shape the set. */
export interface ServiceSetOptions {
  /** When to pass over instances whose requests keep failing; false: never. Defaults in ejection.ts. */
  ejection?: EjectionOptions | false | undefined;
}

export interface ChangesOptions {
  /** Start with an `added` change for every instance already in the set. Default false. */
  initial?: boolean | undefined;
}

const CHANGES_OPTIONS = ['initial'];

export class ServiceSet extends EventEmitter<ServiceSetEvents> {
  readonly service: string;
  readonly #client: Etcd<unknown>;
  readonly #dir: string;
  readonly #closed = new AbortController();
  /** Valid instances by their key. */
  readonly #instances = new Map<string, ServiceInstance>();
  /** Stored values that could not be read, by their key. */
  readonly #malformed = new Map<string, MalformedInstanceError>();
  readonly #channels = new Set<Channel<ServiceChange>>();
  readonly #pickers = new Map<PickStrategy, Picker>();
  readonly #ejections: Ejections | undefined;
  #mirror: Mirror<unknown> | undefined;
  /** Stops listening to the caller's signal. */
  #unlink: (() => void) | undefined;
  #detach: (() => void) | undefined;
  #reopening: Promise<void> | undefined;
  #all: readonly ServiceInstance[] | undefined;
  #up: readonly ServiceInstance[] | undefined;
  #healthy: readonly ServiceInstance[] | undefined;

  private constructor(
    client: Etcd<unknown>,
    service: string,
    dir: string,
    ejections: Ejections | undefined,
  ) {
    super();
    this.#client = client;
    this.service = service;
    this.#dir = dir;
    this.#ejections = ejections;
  }

  /**
   * @internal use `registry.discover()`: resolves once the first listing is
   * complete. `signal` closes the set whenever it aborts; `timeout` bounds the
   * first listing only.
   */
  static async open(
    client: Etcd<unknown>,
    service: string,
    dir: string,
    options: CallOptions & ServiceSetOptions,
  ): Promise<ServiceSet> {
    const { signal, timeout, ejection } = options;
    signal?.throwIfAborted();
    const ejections = ejection === false ? undefined : new Ejections(ejection);
    const set = new ServiceSet(client, service, dir, ejections);
    if (signal) {
      const onAbort = () => void set.#close(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      set.#unlink = () => signal.removeEventListener('abort', onAbort);
    }
    const timer =
      timeout === undefined || timeout === 0
        ? undefined
        : setTimeout(() => {
            const error = new TimeoutError(
              `the first listing of ${service} took over ${timeout} ms`,
            );
            void set.#close(error);
          }, timeout);
    try {
      // The mirror closes with the set: a mirror that ended on its own would go unnoticed.
      set.#adopt(await client.mirror(dir, { signal: set.#closed.signal }));
    } catch (err) {
      const reason: unknown = set.#closed.signal.reason;
      await set.#close(reason);
      throw reason ?? err;
    } finally {
      clearTimeout(timer);
    }
    return set;
  }

  /** Every instance, `up` and `draining`, sorted by ID. */
  instances(): readonly ServiceInstance[] {
    this.#all ??= Object.freeze(
      [...this.#instances.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    );
    return this.#all;
  }

  /** Number of instances, `up` and `draining`. */
  get size(): number {
    return this.#instances.size;
  }

  /** The instance with this ID, if it is in the set. */
  get(id: string): ServiceInstance | undefined {
    return this.#instances.get(`${this.#dir}${id}`);
  }

  /** Stored values under the service that are not readable instances, right now. */
  malformed(): readonly MalformedInstanceError[] {
    return [...this.#malformed.values()];
  }

  /** The store revision the set reflects. */
  get revision(): bigint {
    return this.#mirror?.revision ?? 0n;
  }

  /** True until `close()`. */
  get open(): boolean {
    return !this.#closed.signal.aborted;
  }

  /**
   * The instances `pick()` chooses among: `up`, healthy and not ejected,
   * with the fallback described in candidates.ts.
   */
  candidates(options: PickOptions = {}): readonly ServiceInstance[] {
    checkOptions('candidates', options, PICK_OPTIONS);
    return this.#candidates(options);
  }

  /**
   * One candidate chosen by `strategy` (default round-robin), or undefined
   * when there is none. Draining instances are never picked; unhealthy and
   * ejected ones only as a fallback (see `PickOptions`).
   */
  pick(strategy: PickStrategy | Picker = 'round-robin', options: PickOptions = {}) {
    checkOptions('pick', options, PICK_OPTIONS);
    let picker: Picker;
    if (typeof strategy === 'string') {
      // An unknown name is never cached, so pickerFor refuses it on every call.
      picker = this.#pickers.get(strategy) ?? pickerFor(strategy);
      this.#pickers.set(strategy, picker);
    } else {
      picker = checkPicker(strategy);
    }
    return picker.pick(this.#candidates(options));
  }

  /**
   * Notes a failed request to `instance` (or the instance with that ID).
   * Enough failures within the ejection window eject it from this set's picks
   * for the ejection's duration. True when this call ejected it.
   */
  noteError(instance: ServiceInstance | string): boolean {
    const id = typeof instance === 'string' ? instance : instance?.id;
    const current = typeof id === 'string' ? this.get(id) : undefined;
    if (!current || !this.#ejections?.note(current.id)) return false;
    this.emit('ejected', current);
    return true;
  }

  /** IDs of the instances this set passes over right now after `noteError()`, sorted. */
  ejected(): string[] {
    return this.#ejections?.ids() ?? [];
  }

  #candidates(options: PickOptions): readonly ServiceInstance[] {
    this.#up ??= Object.freeze(this.instances().filter((i) => i.status === 'up'));
    this.#healthy ??= Object.freeze(this.#up.filter((i) => i.healthy));
    return chooseCandidates(this.#up, this.#healthy, options, this.#ejections);
  }

  /** Resolves with the instances once at least one is `up` (and healthy, with `healthy: true`). */
  ready(options: ReadyOptions = {}): Promise<readonly ServiceInstance[]> {
    return waitReady(this, options);
  }

  /**
   * Changes from now on, one at a time, until the set is closed. Leaving the
   * loop early unsubscribes.
   */
  changes(options: ChangesOptions = {}): AsyncIterableIterator<ServiceChange> {
    checkOptions('changes', options, CHANGES_OPTIONS);
    const channel: Channel<ServiceChange> = new Channel(() => this.#channels.delete(channel));
    if (options.initial) {
      for (const instance of this.instances()) channel.push({ type: 'added', instance });
    }
    if (this.open) this.#channels.add(channel);
    else channel.end();
    return channel;
  }

  /** Stops following the store. Idempotent. */
  async close(): Promise<void> {
    await this.#close(new ServiceSetClosedError(`the set of ${this.service} was closed`));
  }

  async #close(reason: unknown): Promise<void> {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort(reason);
    this.#unlink?.();
    this.#detach?.();
    const mirror = this.#mirror;
    await Promise.all([mirror?.close(), this.#reopening]);
    for (const channel of this.#channels) channel.end();
    this.emit('closed');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Takes over a freshly listed mirror: applies the difference, then follows its events. */
  #adopt(mirror: Mirror<unknown>): void {
    this.#mirror = mirror;
    const seen = new Set<string>();
    for (const kv of mirror.values()) {
      seen.add(kv.key);
      this.#put(kv);
    }
    for (const [key, instance] of this.#instances) {
      if (!seen.has(key)) this.#remove(key, instance);
    }
    for (const key of this.#malformed.keys()) if (!seen.has(key)) this.#malformed.delete(key);
    const onPut = (kv: KeyValue<unknown>) => this.#put(kv);
    const onRemoved = (kv: KeyValue<unknown>) => {
      this.#malformed.delete(kv.key);
      const instance = this.#instances.get(kv.key);
      if (instance) this.#remove(kv.key, instance);
    };
    const onResynced = (revision: bigint) => this.emit('resynced', revision);
    const onError = (error: Error) => this.#reopen(error);
    mirror
      .on('added', onPut)
      .on('updated', onPut)
      .on('removed', onRemoved)
      .on('resynced', onResynced)
      .on('error', onError);
    this.#detach = () => {
      mirror
        .off('added', onPut)
        .off('updated', onPut)
        .off('removed', onRemoved)
        .off('resynced', onResynced)
        .off('error', onError);
    };
  }

  #put(kv: KeyValue<unknown>): void {
    const previous = this.#instances.get(kv.key);
    let instance: ServiceInstance;
    try {
      instance = decodeInstance(this.service, this.#dir, kv);
    } catch (err) {
      const error =
        err instanceof MalformedInstanceError
          ? err
          : new MalformedInstanceError(kv.key, 'cannot be read', { cause: err });
      this.#malformed.set(kv.key, error);
      this.emit('invalid', error);
      if (previous) this.#remove(kv.key, previous);
      return;
    }
    this.#malformed.delete(kv.key);
    if (previous && previous.modRevision === instance.modRevision) return;
    this.#instances.set(kv.key, instance);
    this.#changed(previous ? { type: 'updated', instance, previous } : { type: 'added', instance });
  }

  #remove(key: string, instance: ServiceInstance): void {
    this.#instances.delete(key);
    this.#ejections?.forget(instance.id);
    this.#changed({ type: 'removed', instance });
  }

  #changed(change: ServiceChange): void {
    this.#all = undefined;
    this.#up = undefined;
    this.#healthy = undefined;
    for (const channel of this.#channels) channel.push(change);
    if (change.type === 'updated') this.emit('updated', change.instance, change.previous);
    else this.emit(change.type, change.instance);
  }

  /** The mirror failed: list again with a new one, with backoff, until closed. */
  #reopen(error: Error): void {
    if (this.#reopening || !this.open) return;
    this.#detach?.();
    this.#detach = undefined;
    this.emit('interrupted', error);
    this.#reopening = (async () => {
      const signal = this.#closed.signal;
      for (let attempt = 0; !signal.aborted; attempt++) {
        try {
          await sleep(backoff(attempt), signal);
          const mirror = await this.#client.mirror(this.#dir, { signal });
          if (signal.aborted) {
            await mirror.close();
            return;
          }
          this.#adopt(mirror);
          this.emit('resynced', mirror.revision);
          return;
        } catch (err) {
          if (signal.aborted) return;
          if (err instanceof ClientClosedError) {
            void this.#fail(err);
            return;
          }
        }
      }
    })().finally(() => {
      this.#reopening = undefined;
    });
  }

  /** The client is gone: end the set, and its change streams with the error. */
  async #fail(error: Error): Promise<void> {
    for (const channel of this.#channels) channel.end(error);
    await this.close();
  }
}
