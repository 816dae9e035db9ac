/**
 * A `Watcher` is one watch on a key or prefix: an async iterable of event
 * batches and an EventEmitter3 of its state changes.
 *
 * How it works: the watcher remembers the next revision it has to deliver
 * (`nextRevision`). Each batch it hands out moves that mark past the batch's
 * last event; a progress notification moves it past the notified revision.
 * When its stream reconnects, the hub re-creates the watch from that mark, so
 * nothing is lost and, since events below the mark are dropped, nothing is
 * delivered twice. A start revision that has been compacted ends the watcher
 * with `WatchCompactedError`; it never restarts silently from "now".
 */
import { EventEmitter } from 'eventemitter3';
import type { KeySpace } from './bytes.js';
import { toBase64 } from './bytes.js';
import type { Codec } from './codec.js';
import {
  ClientClosedError,
  EtcdError,
  ProtocolError,
  TimeoutError,
  UnavailableError,
} from './errors.js';
import { decodeKeyValue, type KeyValue } from './key-value.js';
import {
  RevisionRegressedError,
  regressed,
  WatchCanceledError,
  WatchCompactedError,
} from './watch-errors.js';
import { asArray, bool, headerRevision, int64, type Json, optObject, str } from './wire.js';

export type WatchFilter = 'noPut' | 'noDelete' | 0 | 1;

export interface WatchEvent<V = unknown> {
  type: 'put' | 'delete';
  /** The pair after the event; for a delete, only the key and `modRevision` are set. */
  kv: KeyValue<V>;
  /** The pair before the event, with `prevKv: true` (if not compacted). */
  prevKv: KeyValue<V> | undefined;
}

export interface WatchBatch<V = unknown> {
  /** Events in revision order. */
  events: WatchEvent<V>[];
  /** The store revision when etcd sent the batch. */
  revision: bigint;
}

export interface WatcherEvents {
  /** The watch is established on etcd, at this store revision. */
  created: [revision: bigint];
  /** The stream carrying the watch broke; it will be resumed. */
  disconnected: [error: Error];
  /** The watch was re-created after a disconnect, from its next revision. */
  resumed: [revision: bigint];
  /** etcd reports that events up to this revision have all been delivered. */
  progress: [revision: bigint];
  /** The start or resume revision was compacted; the watcher has ended. */
  compacted: [error: WatchCompactedError];
  /** The watcher ended with an error (also thrown from the iterator). */
  error: [error: Error];
  /** The watch's own `timeout` passed: the watcher has ended, as documented, without an error. */
  expired: [];
  /** The watcher ended: cancelled, expired, aborted, failed, or its client closed (see `endReason`). */
  canceled: [];
}

/**
 * Why a watcher ended: `cancelled` by `cancel()`, `expired` at its `timeout`,
 * `aborted` by its signal, `failed` with an error, or `closed` with its client.
 */
export type WatchEndReason = 'cancelled' | 'expired' | 'aborted' | 'failed' | 'closed';

/** Connection failures tolerated before a watch that was never created gives up (as a read's retries). */
const CREATE_ATTEMPTS = 5;

/** What a hub (the stream that carries watches) needs of a watcher. */
export interface HubWatcher {
  id: number;
  createRequest(): Json;
  handle(result: Json): boolean;
  disconnected(error: Error): void;
  fail(error: unknown): void;
  cancel(): Promise<void>;
  /** The client closed: end cleanly. */
  clientClosed(): void;
}

/** What a watcher needs of its hub. */
export interface WatchHub {
  add(watcher: HubWatcher): void;
  remove(watcher: HubWatcher): void;
}

export interface WatchSpec {
  key: Uint8Array;
  end: Uint8Array | undefined;
  startRevision: bigint;
  prevKv: boolean;
  progressNotify: boolean;
  fragment: boolean;
  filters: string[];
  /**
   * A store revision already seen by the caller (a mirror's listing): etcd
   * creating the watch at a lower one means the data went back in time.
   */
  seenRevision?: bigint;
}

/** When the watcher gives up on creation and when it ends by itself, in ms (0: never). */
export interface WatchDeadlines {
  create: number;
  expire: number;
}

type Settle = {
  resolve: (r: IteratorResult<WatchBatch<never>>) => void;
  reject: (e: unknown) => void;
};

export class Watcher<V = unknown>
  extends EventEmitter<WatcherEvents>
  implements AsyncIterable<WatchBatch<V>>, HubWatcher
{
  /** The watch ID on the stream (stable across reconnects). */
  id = 0;
  readonly #spec: WatchSpec;
  readonly #keys: KeySpace;
  readonly #codec: Codec<V>;
  readonly #hub: WatchHub;
  #next: bigint;
  #created = false;
  /** Established on the current stream; `disconnected` is emitted once per outage. */
  #live = false;
  #fragments: Json[] = [];
  #queue: WatchBatch<V>[] = [];
  #waiting: Settle | undefined;
  #ended = false;
  #error: unknown;
  #iterating = false;
  #ready: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  #endReason: WatchEndReason | undefined;
  /** The last reason the stream could not carry the watch before it was created. */
  #createError: Error | undefined;
  #createFailures = 0;
  #timers: NodeJS.Timeout[] = [];
  #detach: (() => void) | undefined;

  /** @internal created by the client's `watch` and `watchdir`. */
  constructor(spec: WatchSpec, keys: KeySpace, codec: Codec<V>, hub: WatchHub) {
    super();
    this.#spec = spec;
    this.#keys = keys;
    this.#codec = codec;
    this.#hub = hub;
    this.#next = spec.startRevision;
  }

  /** The next revision this watcher will deliver (0n before a "now" watch is created). */
  get nextRevision(): bigint {
    return this.#next;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Why the watcher ended, once it has. */
  get endReason(): WatchEndReason | undefined {
    return this.#endReason;
  }

  /**
   * @internal resolves once etcd has created the watch; rejects when it cannot
   * be created within `deadlines.create`, and ends the watcher at `deadlines.expire`.
   */
  start(signal: AbortSignal | undefined, deadlines: WatchDeadlines): Promise<this> {
    return new Promise<this>((resolve, reject) => {
      this.#ready = { resolve: () => resolve(this), reject };
      if (signal) {
        if (signal.aborted) return this.#abort(signal.reason);
        const onAbort = () => this.#abort(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        this.#detach = () => signal.removeEventListener('abort', onAbort);
      }
      if (deadlines.create > 0) {
        this.#timers.push(
          setTimeout(() => {
            if (this.#created) return;
            this.fail(
              this.#createError ??
                new TimeoutError(`etcd did not create the watch within ${deadlines.create} ms`),
            );
          }, deadlines.create),
        );
      }
      if (deadlines.expire > 0) {
        this.#timers.push(setTimeout(() => this.#expire(), deadlines.expire));
      }
      this.#hub.add(this);
    });
  }

  /** @internal the create request for the stream, resuming where delivery stopped. */
  createRequest(): Json {
    const s = this.#spec;
    const req: Json = { key: toBase64(s.key), watch_id: String(this.id) };
    if (s.end) req.range_end = toBase64(s.end);
    if (this.#next > 0n) req.start_revision = this.#next.toString();
    if (s.prevKv) req.prev_kv = true;
    if (s.progressNotify) req.progress_notify = true;
    if (s.fragment) req.fragment = true;
    if (s.filters.length > 0) req.filters = s.filters;
    return req;
  }

  /** @internal a `result` message for this watch ID. Returns false if the hub should re-create it. */
  handle(result: Json): boolean {
    const revision = headerRevision(result);
    if (bool(result.canceled)) return this.#canceled(result, revision);
    if (bool(result.created)) {
      this.#onCreated(revision);
      return true;
    }
    const events = asArray(result.events, 'events');
    if (events.length === 0) {
      // A progress notification: every event up to `revision` has been sent.
      if (revision >= this.#next) this.#next = revision + 1n;
      this.emit('progress', revision);
      return true;
    }
    if (bool(result.fragment)) {
      this.#fragments.push(...(events as Json[]));
      return true;
    }
    const all =
      this.#fragments.length > 0 ? [...this.#fragments, ...(events as Json[])] : (events as Json[]);
    this.#fragments = [];
    this.#deliver(all, revision);
    return true;
  }

  #onCreated(revision: bigint): void {
    this.#live = true;
    if (!this.#created) {
      this.#created = true;
      const seen = this.#spec.seenRevision;
      if (seen !== undefined && revision < seen) {
        this.fail(regressed(revision, seen));
        return;
      }
      if (this.#next === 0n) this.#next = revision + 1n;
      this.emit('created', revision);
      this.#ready?.resolve();
      this.#ready = undefined;
      return;
    }
    // Re-created after a reconnect: the store must not be behind what we delivered.
    if (revision < this.#next - 1n) {
      this.fail(regressed(revision, this.#next - 1n));
      return;
    }
    this.emit('resumed', revision);
  }

  #canceled(result: Json, revision: bigint): boolean {
    const compactRevision = int64(result.compact_revision, 'compact_revision');
    if (compactRevision > 0n) {
      const err = new WatchCompactedError(
        `revision ${this.#next} is compacted (oldest available: ${compactRevision}); events may have been missed`,
        compactRevision,
      );
      this.emit('compacted', err);
      this.fail(err);
      return true;
    }
    const reason = str(result.cancel_reason, 'cancel_reason');
    // Cancelled because the member lost its leader: resume elsewhere.
    if (reason.includes('no leader')) return false;
    if (this.#ended) return true;
    this.fail(
      new WatchCanceledError(
        `etcd cancelled the watch at revision ${revision}: ${reason || 'no reason given'}`,
      ),
    );
    return true;
  }

  #deliver(raw: Json[], revision: bigint): void {
    const events: WatchEvent<V>[] = [];
    for (const item of raw) {
      const kv = decodeKeyValue(item.kv, this.#keys, this.#codec);
      // Anything below the mark was delivered before a reconnect.
      if (kv.modRevision < this.#next) continue;
      const prev = optObject(item.prev_kv, 'prev_kv');
      events.push({
        type: item.type === 'DELETE' ? 'delete' : 'put',
        kv,
        prevKv: prev ? decodeKeyValue(prev, this.#keys, this.#codec) : undefined,
      });
    }
    const last = events.at(-1);
    if (!last) return;
    if (last.kv.modRevision < (events[0]?.kv.modRevision ?? 0n)) {
      this.fail(new ProtocolError('watch events arrived out of revision order'));
      return;
    }
    this.#next = last.kv.modRevision + 1n;
    this.#push({ events, revision });
  }

  /** @internal the stream broke; the hub will re-create the watch. */
  disconnected(error: Error): void {
    this.#fragments = [];
    if (this.#ended) return;
    if (!this.#created) {
      this.#createFailed(error);
      return;
    }
    if (!this.#live) return;
    this.#live = false;
    this.emit('disconnected', error);
  }

  /**
   * The stream could not carry the watch before etcd created it. A refusal no
   * retry can fix (bad credentials, no permission) ends the wait at once; a
   * member that cannot be reached ends it after as many tries as a read gets.
   */
  #createFailed(error: Error): void {
    this.#createError = error;
    const lasting =
      error instanceof EtcdError &&
      !error.retryable &&
      !(error instanceof UnavailableError) &&
      !(error instanceof TimeoutError);
    if (lasting || ++this.#createFailures >= CREATE_ATTEMPTS) this.fail(error);
  }

  /** @internal ends the watcher with an error. */
  fail(error: unknown): void {
    if (this.#ended) return;
    this.#error = error;
    this.emit('error', error as Error);
    this.#finish('failed');
  }

  /** Stops watching. Pending and later iterations end (`done`). Idempotent. */
  async cancel(): Promise<void> {
    this.#finish('cancelled');
  }

  /** @internal the client was closed: pending and later iterations end (`done`). */
  clientClosed(): void {
    if (!this.#created) this.#error = new ClientClosedError('the client was closed');
    this.#finish('closed');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.cancel();
  }

  #abort(reason: unknown): void {
    if (this.#ended) return;
    this.#error = reason;
    this.emit('error', reason as Error);
    this.#finish('aborted');
  }

  #expire(): void {
    if (this.#ended) return;
    if (!this.#created) {
      this.fail(new TimeoutError('the watch timed out before etcd created it'));
      return;
    }
    this.#endReason = 'expired';
    this.emit('expired');
    this.#finish('expired');
  }

  #finish(reason: WatchEndReason): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#endReason ??= reason;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers = [];
    this.#detach?.();
    this.#detach = undefined;
    this.#hub.remove(this);
    this.#ready?.reject(
      this.#error ?? new WatchCanceledError('the watch was cancelled before it was created'),
    );
    this.#ready = undefined;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting) {
      if (this.#error !== undefined) waiting.reject(this.#error);
      else waiting.resolve({ done: true, value: undefined });
    }
    this.emit('canceled');
  }

  #push(batch: WatchBatch<V>): void {
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting.resolve({ done: false, value: batch as WatchBatch<never> });
    } else {
      this.#queue.push(batch);
    }
  }

  /** Batches in order. Leaving the loop early cancels the watcher. */
  [Symbol.asyncIterator](): AsyncIterator<WatchBatch<V>> {
    if (this.#iterating) throw new EtcdError('a watcher can be iterated only once');
    this.#iterating = true;
    return {
      next: () => {
        const batch = this.#queue.shift();
        if (batch) return Promise.resolve({ done: false, value: batch });
        if (this.#ended) {
          return this.#error !== undefined
            ? Promise.reject(this.#error)
            : Promise.resolve({ done: true, value: undefined });
        }
        return new Promise((resolve, reject) => {
          this.#waiting = { resolve: resolve as Settle['resolve'], reject };
        });
      },
      return: async () => {
        await this.cancel();
        return { done: true, value: undefined };
      },
    };
  }

  /** Single events in order, for `for await (const event of watcher.events())`. */
  async *events(): AsyncGenerator<WatchEvent<V>, void, undefined> {
    for await (const batch of this) yield* batch.events;
  }
}

export { RevisionRegressedError, WatchCanceledError, WatchCompactedError };
