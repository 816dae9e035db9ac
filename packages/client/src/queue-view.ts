/**
 * `QueueView`: the keys under a queue's prefix as one client sees them, kept
 * current by one watch that every contender and holder of that client on
 * that prefix shares.
 *
 * How it works: the watch is created from "now" first, so etcd keeps it in
 * its synced group and delivers each event as it is written (a watch that
 * starts at a past revision is caught up only every 100 ms). The prefix is
 * then read whole at a revision R; events at or below R are already in that
 * read and are skipped, later ones are applied. The view is thus exact at its
 * `revision`, and a contender learns that its turn has come from the event of
 * its predecessor's delete alone, with no further round trip; a holder learns
 * that its key is gone from the same stream. The client's watcher resumes
 * after a reconnect without a gap; after a compaction the view is read anew.
 * A view nobody uses is kept for a second for the next contender, then its
 * watch is cancelled.
 */
import type { Etcd } from './client.js';
import { ClientClosedError } from './errors.js';
import type { KeyValue } from './key-value.js';
import { WatchCompactedError } from './watch-errors.js';
import type { Watcher } from './watcher.js';

/** What a view's user may look at, exact at `revision`. */
export interface QueueState {
  /** The store revision the view is exact at. */
  readonly revision: bigint;
  /** The pair of `key` (as the client names it), if it exists. */
  get(key: string): KeyValue<unknown> | undefined;
  /**
   * How many keys that start with `under` were created before
   * `createRevision`, each counted as `weight` says (default 1); counting
   * stops at `limit`.
   */
  countOlder(
    createRevision: bigint,
    under: string,
    limit: number,
    weight?: (kv: KeyValue<unknown>) => number,
  ): number;
}

/** Foreign deletes a view remembers for the waiters that may need them. */
const FOREIGN_KEPT = 256;

/** How long a view nobody uses keeps its watch for the next user. */
const IDLE_MS = 1_000;

const views = new WeakMap<Etcd<unknown>, Map<string, QueueView>>();

export class QueueView implements QueueState {
  readonly #etcd: Etcd<unknown>;
  readonly #scope: string;
  readonly #entries = new Map<string, KeyValue<unknown>>();
  /** The entries oldest first, built when asked for after a change. */
  #byAge: KeyValue<unknown>[] | undefined;
  #revision = 0n;
  #loaded = false;
  #failure: Error | undefined;
  #running = false;
  readonly #stop = new AbortController();
  readonly #checks = new Set<() => void>();
  #users = 0;
  #idle: NodeJS.Timeout | undefined;
  /** `key@createRevision` of keys whose holders here are giving them up. */
  readonly #releasing = new Set<string>();
  /** Deletes not known as a holder's own release: revision, and the deleted key's create revision. */
  #foreign: Array<{ revision: bigint; createRevision: bigint }> = [];
  /** Deletes at or below this revision were not all seen one by one (before a read, or forgotten). */
  #seenFrom = 0n;

  private constructor(etcd: Etcd<unknown>, scope: string) {
    this.#etcd = etcd;
    this.#scope = scope;
  }

  /** The client's view of `scope` if it has one now, without counting a use. */
  static existing(etcd: Etcd<unknown>, scope: string): QueueView | undefined {
    return views.get(etcd)?.get(scope);
  }

  /** The client's view of `scope`, counted as used until `release()`. */
  static use(etcd: Etcd<unknown>, scope: string): QueueView {
    let byScope = views.get(etcd);
    if (!byScope) {
      byScope = new Map();
      views.set(etcd, byScope);
    }
    let view = byScope.get(scope);
    if (!view) {
      view = new QueueView(etcd, scope);
      byScope.set(scope, view);
    }
    view.#users++;
    clearTimeout(view.#idle);
    view.#idle = undefined;
    return view;
  }

  /** Ends one use; the watch is cancelled once nobody has used the view for a while. */
  release(): void {
    if (--this.#users > 0 || this.#idle) return;
    this.#idle = setTimeout(() => this.#close(), IDLE_MS).unref();
  }

  get revision(): bigint {
    return this.#revision;
  }

  get(key: string): KeyValue<unknown> | undefined {
    return this.#entries.get(key);
  }

  countOlder(
    createRevision: bigint,
    under: string,
    limit: number,
    weight?: (kv: KeyValue<unknown>) => number,
  ): number {
    this.#byAge ??= [...this.#entries.values()].sort((a, b) =>
      a.createRevision < b.createRevision ? -1 : a.createRevision > b.createRevision ? 1 : 0,
    );
    let count = 0;
    for (const kv of this.#byAge) {
      if (kv.createRevision >= createRevision || count >= limit) break;
      if (kv.key.startsWith(under)) count += weight ? weight(kv) : 1;
    }
    return count;
  }

  /**
   * Marks `key`, created at `createRevision`, as being given up by its holder
   * through this client: its delete, when the view sees it, is a release that
   * nobody needs to hear of, not a loss its holder must learn first.
   */
  releasing(key: string, createRevision: bigint): void {
    this.#releasing.add(`${key}@${createRevision}`);
  }

  /**
   * Whether every key created before `createRevision` that left the view
   * since then was given up by its holder through this client, or went
   * before a read that was `settled`. Then a turn that came with those
   * deletes needs no confirming read: no holder is left to learn of a loss,
   * and "nothing older" stays true at any later revision.
   */
  onlyReleasedSince(createRevision: bigint): boolean {
    if (createRevision <= this.#seenFrom) return false;
    return !this.#foreign.some(
      (d) => d.revision > createRevision && d.createRevision < createRevision,
    );
  }

  /**
   * A read sent when the view stood at `revision` has been answered: the
   * holders of keys deleted up to then have had their round trip to learn of
   * it, so those deletes no longer ask a later waiter to read.
   */
  settled(revision: bigint): void {
    this.#foreign = this.#foreign.filter((d) => d.revision > revision);
  }

  /**
   * Resolves with the first value `test` returns other than undefined, tried
   * now and after every change of the view. Rejects with the signal's reason,
   * or with the error that ended the view's watch.
   */
  until<T>(test: (state: QueueState) => T | undefined, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const settle = (done: () => void) => {
        this.#checks.delete(check);
        signal?.removeEventListener('abort', onAbort);
        done();
      };
      const onAbort = () => settle(() => reject(signal?.reason));
      const check = () => {
        const failure = this.#failure;
        if (failure) return settle(() => reject(failure));
        if (!this.#loaded) return;
        let value: T | undefined;
        try {
          value = test(this);
        } catch (err) {
          return settle(() => reject(err));
        }
        if (value !== undefined) settle(() => resolve(value));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#checks.add(check);
      this.#start();
      check();
    });
  }

  #start(): void {
    if (this.#running || this.#failure) return;
    this.#running = true;
    void this.#run();
  }

  /** Watches, reads, then follows the watch; reads anew after a compaction. */
  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    try {
      for (;;) {
        let watcher: Watcher<unknown> | undefined;
        try {
          watcher = await this.#etcd.watchdir(this.#scope, { signal });
          const listed = await this.#etcd.readdir(this.#scope, { signal });
          this.#entries.clear();
          for (const kv of listed.kvs) this.#entries.set(kv.key, kv);
          // Whatever was deleted before this read was not seen as it happened.
          this.#foreign = [];
          this.#seenFrom = listed.revision;
          for (const mark of this.#releasing) {
            const at = mark.lastIndexOf('@');
            const kv = this.#entries.get(mark.slice(0, at));
            if (kv?.createRevision !== BigInt(mark.slice(at + 1))) this.#releasing.delete(mark);
          }
          this.#changed(listed.revision);
          this.#loaded = true;
          this.#notify();
          for await (const batch of watcher) {
            for (const event of batch.events) {
              // What the read already holds arrives on the watch too: skip it. (Events of
              // one revision, such as the deletes of one lease's keys, all apply.)
              if (event.kv.modRevision <= listed.revision) continue;
              if (event.type === 'delete') this.#deleted(event.kv.key, event.kv.modRevision);
              else this.#entries.set(event.kv.key, event.kv);
              this.#changed(event.kv.modRevision);
            }
            this.#notify();
          }
          throw new ClientClosedError(`the watch on ${this.#scope} ended with its client`);
        } catch (err) {
          if (!(err instanceof WatchCompactedError) || signal.aborted) throw err;
        } finally {
          await watcher?.cancel();
        }
      }
    } catch (err) {
      this.#fail(signal.aborted ? new ClientClosedError('the queue view was closed') : err);
    }
  }

  #deleted(key: string, revision: bigint): void {
    const gone = this.#entries.get(key);
    if (!gone) return;
    this.#entries.delete(key);
    if (this.#releasing.delete(`${key}@${gone.createRevision}`)) return;
    this.#foreign.push({ revision, createRevision: gone.createRevision });
    // Bounded: a waiter created before what is forgotten confirms by a read.
    if (this.#foreign.length > FOREIGN_KEPT) this.#seenFrom = this.#foreign.shift()!.revision;
  }

  #changed(revision: bigint): void {
    if (revision > this.#revision) this.#revision = revision;
    this.#byAge = undefined;
  }

  #notify(): void {
    for (const check of [...this.#checks]) check();
  }

  /** Ends the view for everyone waiting on it; the next user starts a new one. */
  #fail(err: unknown): void {
    this.#failure = err instanceof Error ? err : new Error(String(err));
    this.#forget();
    this.#notify();
  }

  #close(): void {
    this.#forget();
    this.#stop.abort();
  }

  #forget(): void {
    const byScope = views.get(this.#etcd);
    if (byScope?.get(this.#scope) === this) byScope.delete(this.#scope);
  }
}
