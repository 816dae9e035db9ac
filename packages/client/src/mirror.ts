/**
 * `Mirror` keeps a live copy of every pair under a prefix: list, then watch.
 *
 * How it works: the prefix is read page by page at one revision R (one
 * snapshot), then watched from R + 1, so no change between the read and the
 * watch is missed. Each watch batch updates the copy and is passed on as
 * changes. If the watch falls behind a compaction, the prefix is read again
 * at a new revision and only the difference from the copy is emitted, then
 * the watch restarts after that revision. Consumers see one ordered stream of
 * changes that always leads to the true contents of the prefix.
 */
import { EventEmitter } from 'eventemitter3';
import { type Key, toBytes } from './bytes.js';
import type { Context } from './context.js';
import type { KeyValue } from './key-value.js';
import { range } from './kv.js';
import { type IdChecker, startWatch } from './watch.js';
import { WatchCompactedError, type Watcher, type WatchHub } from './watcher.js';

export type MirrorChange<V> =
  | { type: 'added'; kv: KeyValue<V> }
  | { type: 'updated'; kv: KeyValue<V>; prev: KeyValue<V> }
  | { type: 'removed'; kv: KeyValue<V> };

export interface MirrorEvents<V> {
  added: [kv: KeyValue<V>];
  updated: [kv: KeyValue<V>, prev: KeyValue<V>];
  removed: [kv: KeyValue<V>];
  /** The copy matches the store at this revision after a (re-)list. */
  synced: [revision: bigint];
  /** The watch fell behind a compaction; the prefix was listed again. */
  resynced: [revision: bigint];
  /** The mirror stopped with an error. */
  error: [error: Error];
}

/** Bytes as a string that maps one-to-one, for use as a map key. */
const mapKey = (kv: KeyValue<unknown>) => Buffer.from(kv.keyBytes).toString('latin1');

export class Mirror<V = unknown> extends EventEmitter<MirrorEvents<V>> {
  readonly #ctx: Context<V>;
  readonly #hub: WatchHub & IdChecker;
  readonly #dir: Key;
  readonly #items = new Map<string, KeyValue<V>>();
  readonly #abort = new AbortController();
  #revision = 0n;
  #watcher: Watcher<V> | undefined;
  #running: Promise<void> | undefined;
  #listeners = new Set<(changes: MirrorChange<V>[] | Error | null) => void>();

  /** @internal use `client.mirror()`. */
  constructor(ctx: Context<V>, hub: WatchHub & IdChecker, dir: Key) {
    super();
    this.#ctx = ctx;
    this.#hub = hub;
    this.#dir = dir;
  }

  /** @internal lists the prefix, starts watching, and resolves when the copy is complete. */
  async start(signal?: AbortSignal): Promise<this> {
    if (signal) {
      const onAbort = () => void this.close();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#abort.signal.addEventListener(
        'abort',
        () => signal.removeEventListener('abort', onAbort),
        { once: true },
      );
    }
    try {
      await this.#list(false);
    } catch (err) {
      await this.close();
      throw err;
    }
    this.#running = this.#follow();
    return this;
  }

  /** The store revision the copy reflects. */
  get revision(): bigint {
    return this.#revision;
  }

  /** Number of pairs under the prefix. */
  get size(): number {
    return this.#items.size;
  }

  /** The current pairs, in key order of their arrival. */
  values(): KeyValue<V>[] {
    return [...this.#items.values()];
  }

  get(key: Key): KeyValue<V> | undefined {
    return this.#items.get(Buffer.from(toBytes(key)).toString('latin1'));
  }

  /** Reads the whole prefix at one revision; on a re-list, emits the difference. */
  async #list(diff: boolean): Promise<void> {
    const fresh = new Map<string, KeyValue<V>>();
    let revision = 0n;
    const pages = range(this.#ctx, this.#dir, { signal: this.#abort.signal }, (r) => {
      revision = r;
    });
    for await (const kv of pages) fresh.set(mapKey(kv), kv);
    const changes: MirrorChange<V>[] = [];
    if (diff) {
      for (const [k, prev] of this.#items)
        if (!fresh.has(k)) changes.push({ type: 'removed', kv: prev });
      for (const [k, kv] of fresh) {
        const prev = this.#items.get(k);
        if (!prev) changes.push({ type: 'added', kv });
        else if (prev.modRevision !== kv.modRevision) changes.push({ type: 'updated', kv, prev });
      }
    } else {
      for (const kv of fresh.values()) changes.push({ type: 'added', kv });
    }
    this.#items.clear();
    for (const [k, kv] of fresh) this.#items.set(k, kv);
    this.#revision = revision;
    this.#emitChanges(changes);
    this.emit(diff ? 'resynced' : 'synced', revision);
  }

  /** Follows the watch until closed; re-lists after a compaction. */
  async #follow(): Promise<void> {
    while (!this.#abort.signal.aborted) {
      try {
        // The store must be at or past the revision listed, or it went back in time.
        this.#watcher = await startWatch(
          this.#ctx,
          this.#hub,
          this.#dir,
          true,
          { startRevision: this.#revision + 1n, signal: this.#abort.signal },
          this.#revision,
        );
        for await (const batch of this.#watcher) {
          const changes: MirrorChange<V>[] = [];
          for (const event of batch.events) {
            const k = mapKey(event.kv);
            const prev = this.#items.get(k);
            if (event.type === 'delete') {
              if (prev) {
                this.#items.delete(k);
                changes.push({ type: 'removed', kv: prev });
              }
            } else {
              this.#items.set(k, event.kv);
              changes.push(
                prev ? { type: 'updated', kv: event.kv, prev } : { type: 'added', kv: event.kv },
              );
            }
            this.#revision = event.kv.modRevision;
          }
          this.#emitChanges(changes);
        }
        // The watcher ended without an error: its client was closed. End quietly.
        void this.close();
        return;
      } catch (err) {
        if (this.#abort.signal.aborted) return;
        if (!(err instanceof WatchCompactedError)) {
          this.#fail(err as Error);
          return;
        }
        try {
          await this.#list(true);
        } catch (listErr) {
          this.#fail(listErr as Error);
          return;
        }
      }
    }
  }

  #emitChanges(changes: MirrorChange<V>[]): void {
    if (changes.length === 0) return;
    for (const change of changes) {
      if (change.type === 'updated') this.emit('updated', change.kv, change.prev);
      else this.emit(change.type, change.kv);
    }
    for (const listener of this.#listeners) listener(changes);
  }

  #fail(error: Error): void {
    this.emit('error', error);
    for (const listener of this.#listeners) listener(error);
    void this.close();
  }

  /** Batches of changes from now on, in order, until the mirror is closed. */
  async *changes(): AsyncGenerator<MirrorChange<V>[], void, undefined> {
    const queue: Array<MirrorChange<V>[] | Error | null> = [];
    let wake: (() => void) | undefined;
    const listener = (item: MirrorChange<V>[] | Error | null) => {
      queue.push(item);
      wake?.();
    };
    this.#listeners.add(listener);
    try {
      for (;;) {
        const item = queue.shift();
        if (item === undefined) {
          if (this.#abort.signal.aborted) return;
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
          continue;
        }
        if (item === null) return;
        if (item instanceof Error) throw item;
        yield item;
      }
    } finally {
      this.#listeners.delete(listener);
    }
  }

  /** Stops following the prefix. Idempotent. */
  async close(): Promise<void> {
    if (this.#abort.signal.aborted) return;
    this.#abort.abort();
    await this.#watcher?.cancel();
    for (const listener of this.#listeners) listener(null);
    await this.#running;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
