/**
 * Watch hubs carry watchers to etcd. `StreamWatchHub` (stream-watch-hub.ts)
 * multiplexes every watcher of a client over one stream of the transport;
 * the gateway's `HttpWatchHub` (gateway/http-watch-hub.ts) is the fallback
 * for a gateway with auth, one streaming request per watcher. What they share
 * is here: watcher IDs, the registry of live watchers, and the routing of
 * etcd's watch messages to them.
 */
import {
  ClientClosedError,
  fromGatewayError,
  InvalidArgumentError,
  ServerError,
  UnavailableError,
} from './errors.js';
import type { Transport } from './transport.js';
import { WatchCanceledError } from './watch-errors.js';
import type { HubWatcher, WatchHub } from './watcher.js';
import { asObject, bool, int64, optObject, str } from './wire.js';

export interface WatchTimings {
  /** Send a progress request after this many ms without a message. */
  progressInterval: number;
  /** Tear the stream down when a progress request is unanswered this long. */
  progressTimeout: number;
}

type AnyWatcher = HubWatcher;

const MAX_BACKOFF_MS = 3_000;

/** A reconnect's delay after `attempt` failures: exponential, jittered, capped. */
export function backoff(attempt: number): number {
  const base = Math.min(MAX_BACKOFF_MS, 50 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

/** Shared by every hub: watcher IDs and the registry of live watchers. */
export abstract class BaseHub implements WatchHub {
  protected readonly transport: Transport;
  protected readonly watchers = new Map<number, AnyWatcher>();
  /** IDs whose cancel was sent on the current stream and not yet confirmed. */
  protected readonly cancelling = new Set<number>();
  protected closed = false;
  readonly #stop = new AbortController();
  #nextId = 1;

  constructor(transport: Transport) {
    this.transport = transport;
  }

  /** Checks a caller-chosen watch ID (the seed's `watchId`) before it is used. */
  checkId(id: number): void {
    if (!Number.isSafeInteger(id) || id <= 0) {
      throw new InvalidArgumentError(`watchId must be a positive integer, got ${id}`);
    }
    if (this.watchers.has(id)) throw new InvalidArgumentError(`watchId ${id} is already in use`);
  }

  add(watcher: AnyWatcher): void {
    if (this.closed) {
      watcher.fail(new ClientClosedError('the client is closed'));
      return;
    }
    if (watcher.id === 0) {
      while (this.watchers.has(this.#nextId)) this.#nextId++;
      watcher.id = this.#nextId++;
    }
    this.watchers.set(watcher.id, watcher);
    this.started(watcher);
  }

  remove(watcher: AnyWatcher): void {
    if (this.watchers.get(watcher.id) !== watcher) return;
    this.watchers.delete(watcher.id);
    this.stopped(watcher);
  }

  /** Ends every watcher cleanly and releases connections. */
  close(): void {
    this.closed = true;
    this.#stop.abort();
    for (const watcher of [...this.watchers.values()]) watcher.clientClosed();
  }

  /** Aborts when the hub closes: ends its waits. */
  protected get stopping(): AbortSignal {
    return this.#stop.signal;
  }

  /** Number of live watchers. */
  get size(): number {
    return this.watchers.size;
  }

  protected abstract started(watcher: AnyWatcher): void;
  protected abstract stopped(watcher: AnyWatcher): void;
  /** The watcher whose create request is the oldest still unanswered. */
  protected abstract oldestPending(): AnyWatcher | undefined;
  /** The create request of watch `id` was answered. */
  protected abstract answered(id: number): void;

  /** Routes one stream message; returns an error when the stream must be re-established. */
  protected route(message: unknown, only?: AnyWatcher): Error | undefined {
    const msg = asObject(message, 'watch message');
    const error = optObject(msg.error, 'error');
    if (error) {
      const code = Number(error.grpc_code ?? error.code ?? 2);
      return fromGatewayError(code, str(error.message, 'message'), { write: false });
    }
    const result = asObject(msg.result, 'result');
    const id = Number(int64(result.watch_id, 'watch_id'));
    if (id === -1) {
      // etcd 3.4 reports a refused create under ID -1. Creates are answered in
      // order, so it belongs to the oldest unanswered one. Otherwise it is the
      // answer to a progress request: liveness only.
      if (bool(result.created) && bool(result.canceled)) {
        const reason = str(result.cancel_reason, 'cancel_reason') || 'no reason given';
        if (reason.includes('invalid auth token')) {
          // The member no longer knows the token: get a new one and open the stream again.
          this.transport.tokenRefused();
          return new UnavailableError(`etcd refused the watch's auth token: ${reason}`);
        }
        // A refusal that names a condition (no permission, no user) is typed as a read's would be.
        const typed = fromGatewayError(2, reason, { write: false });
        (only ?? this.oldestPending())?.fail(
          typed instanceof ServerError
            ? new WatchCanceledError(`etcd refused the watch: ${reason}`)
            : typed,
        );
      }
      return undefined;
    }
    if (bool(result.created)) this.answered(id);
    // etcd's confirmation of a cancel we sent: the ID may already serve a new watcher.
    if (bool(result.canceled) && this.cancelling.delete(id)) return undefined;
    const watcher = only ?? this.watchers.get(id);
    if (!watcher || watcher.id !== id) return undefined; // cancelled meanwhile
    return watcher.handle(result) ? undefined : new UnavailableError('the member lost its leader');
  }
}
