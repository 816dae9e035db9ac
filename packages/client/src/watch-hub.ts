/**
 * Watch hubs carry watchers to etcd. `SocketWatchHub` multiplexes every
 * watcher of a client over one WebSocket to `<apiPrefix>/watch`, as gRPC
 * clients share one stream; `HttpWatchHub` is the fallback, one streaming
 * `POST <apiPrefix>/watch` (newline-delimited JSON) per watcher.
 *
 * How the socket hub works: watchers are created on the socket as soon as it
 * is open. When nothing has arrived for `progressInterval` it sends a progress
 * request; if that goes unanswered for `progressTimeout` the socket counts as
 * stalled. A stalled, closed or failed socket is torn down, every watcher is
 * told it was disconnected, and after a backoff a new socket (on the next
 * endpoint) re-creates each watcher from its next revision.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ClientClosedError,
  EtcdError,
  fromGatewayError,
  InvalidArgumentError,
  ProtocolError,
  ServerError,
  UnavailableError,
} from './errors.js';
import { NdjsonParser } from './ndjson.js';
import { type GatewaySocket, openGatewaySocket } from './socket.js';
import type { Transport } from './transport.js';
import { WatchCanceledError } from './watch-errors.js';
import type { HubWatcher, WatchHub } from './watcher.js';
import { asObject, bool, type Json, optObject, str } from './wire.js';

export interface WatchTimings {
  /** Send a progress request after this many ms without a message. */
  progressInterval: number;
  /** Tear the stream down when a progress request is unanswered this long. */
  progressTimeout: number;
}

type AnyWatcher = HubWatcher;

const MAX_BACKOFF_MS = 3_000;
/** How long a watch socket without watchers stays open for the next one. */
const IDLE_SOCKET_MS = 1_000;
const REQUIRE_LEADER = { 'grpc-metadata-hasleader': 'true' };

function parseMessage(data: unknown): unknown {
  try {
    return JSON.parse(String(data));
  } catch (err) {
    throw new ProtocolError(`a watch message is not JSON: ${String(data).slice(0, 120)}`, {
      cause: err,
    });
  }
}

function backoff(attempt: number): number {
  const base = Math.min(MAX_BACKOFF_MS, 50 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

/** Shared by both hubs: watcher IDs and the registry of live watchers. */
abstract class BaseHub implements WatchHub {
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
    const id = Number(str(result.watch_id ?? '0', 'watch_id') || '0');
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

interface Connection {
  socket: GatewaySocket;
  url: string;
  open: boolean;
  lastMessage: number;
  progressSent: number;
  /** IDs whose create request was sent and not yet answered, oldest first. */
  pending: number[];
  /** When the member was last asked whether it has a leader. */
  leaderChecked: number;
}

export class SocketWatchHub extends BaseHub {
  readonly #timings: WatchTimings;
  #conn: Connection | undefined;
  #attempt = 0;
  #reconnect: NodeJS.Timeout | undefined;
  #ticker: NodeJS.Timeout | undefined;
  #idle: NodeJS.Timeout | undefined;
  /** Sockets opened so far: lets tests check that watchers share one. */
  socketsOpened = 0;

  constructor(transport: Transport, timings: WatchTimings) {
    super(transport);
    this.#timings = timings;
  }

  protected started(watcher: AnyWatcher): void {
    clearTimeout(this.#idle);
    this.#idle = undefined;
    if (this.#conn?.open) this.#create(this.#conn, watcher);
    else this.#ensureConnection();
  }

  protected stopped(watcher: AnyWatcher): void {
    const conn = this.#conn;
    if (conn?.open) {
      this.cancelling.add(watcher.id);
      this.#send(conn, { cancel_request: { watch_id: String(watcher.id) } });
    }
    // Keep an idle socket a moment: locks and elections start short watches one
    // after another, and a new socket for each would cost a handshake every time.
    if (this.watchers.size === 0 && !this.#idle) {
      this.#idle = setTimeout(() => {
        this.#idle = undefined;
        if (this.watchers.size === 0) this.#drop();
      }, IDLE_SOCKET_MS);
      this.#idle.unref();
    }
  }

  override close(): void {
    super.close();
    this.#drop();
  }

  #ensureConnection(): void {
    if (this.#conn || this.#reconnect || this.closed) return;
    void this.#connect();
  }

  async #connect(): Promise<void> {
    const url = this.transport.currentEndpoint;
    let prefix: string;
    try {
      prefix = await this.transport.apiPrefix();
    } catch (err) {
      // No member told its version (unreachable, TLS refused): the watchers hear why.
      for (const watcher of [...this.watchers.values()]) watcher.disconnected(err as Error);
      this.#retryLater(url, err as Error);
      return;
    }
    if (this.closed || this.watchers.size === 0 || this.#conn) return;
    const socket = openGatewaySocket(url, `${prefix}/watch`, this.transport.tls);
    const ws = socket.ws;
    const conn: Connection = {
      socket,
      url,
      open: false,
      lastMessage: Date.now(),
      progressSent: 0,
      pending: [],
      leaderChecked: Date.now(),
    };
    this.#conn = conn;
    this.socketsOpened++;
    ws.onopen = () => {
      conn.open = true;
      conn.lastMessage = Date.now();
      for (const watcher of this.watchers.values()) this.#create(conn, watcher);
    };
    ws.onmessage = (event) => this.#onMessage(conn, event.data);
    ws.onclose = (event) =>
      this.#broken(conn, new UnavailableError(`watch stream to ${url} closed (${event.code})`));
    ws.onerror = (event) => {
      const cause = (event as { error?: unknown }).error;
      const why = cause instanceof Error ? `: ${cause.message}` : '';
      this.#broken(conn, new UnavailableError(`watch stream to ${url} failed${why}`, { cause }));
    };
    this.#startTicker();
  }

  #onMessage(conn: Connection, data: unknown): void {
    if (this.#conn !== conn) return;
    conn.lastMessage = Date.now();
    conn.progressSent = 0;
    this.#attempt = 0;
    let failure: Error | undefined;
    try {
      failure = this.route(parseMessage(data));
    } catch (err) {
      failure = err as Error;
    }
    if (failure) this.#broken(conn, failure);
  }

  #create(conn: Connection, watcher: AnyWatcher): void {
    conn.pending.push(watcher.id);
    this.#send(conn, { create_request: watcher.createRequest() });
  }

  protected oldestPending(): AnyWatcher | undefined {
    const id = this.#conn?.pending.shift();
    return id === undefined ? undefined : this.watchers.get(id);
  }

  protected answered(id: number): void {
    const pending = this.#conn?.pending;
    const at = pending?.indexOf(id) ?? -1;
    if (at >= 0) pending?.splice(at, 1);
  }

  #send(conn: Connection, message: Json): void {
    try {
      conn.socket.ws.send(JSON.stringify(message));
    } catch (err) {
      this.#broken(conn, err as Error);
    }
  }

  /** Checks liveness: a quiet socket gets a progress request, an unanswered one is dropped. */
  #startTicker(): void {
    if (this.#ticker) return;
    const every = Math.max(
      10,
      Math.min(this.#timings.progressInterval, this.#timings.progressTimeout) / 2,
    );
    this.#ticker = setInterval(() => {
      const conn = this.#conn;
      if (!conn) return;
      const now = Date.now();
      if (!conn.open) {
        if (now - conn.lastMessage > this.#timings.progressTimeout) {
          this.#broken(
            conn,
            new UnavailableError(`watch stream to ${conn.url} did not open in time`),
          );
        }
        return;
      }
      if (conn.progressSent > 0) {
        if (now - conn.progressSent > this.#timings.progressTimeout) {
          this.#broken(conn, new UnavailableError(`watch stream to ${conn.url} stalled`));
        }
      } else if (now - conn.lastMessage > this.#timings.progressInterval) {
        conn.progressSent = now;
        this.#send(conn, { progress_request: {} });
      }
      // A member cut off from the quorum still answers progress requests but sees
      // no new revisions; the WebSocket proxy cannot ask it to cancel (hasleader),
      // so ask the member itself whether it has a leader.
      if (now - conn.leaderChecked > this.#timings.progressInterval) {
        conn.leaderChecked = now;
        void this.transport.hasLeader(conn.url).then((ok) => {
          if (!ok) this.#broken(conn, new UnavailableError(`${conn.url} has no leader`));
        });
      }
    }, every);
    this.#ticker.unref();
  }

  #broken(conn: Connection, error: Error): void {
    if (this.#conn !== conn) return;
    this.#conn = undefined;
    this.cancelling.clear();
    // A broken or hung connection is cut at once; no closing handshake.
    conn.socket.destroy();
    for (const watcher of this.watchers.values()) watcher.disconnected(error);
    this.#retryLater(conn.url, error);
  }

  #retryLater(url: string, _error: Error): void {
    this.transport.rotateFrom(url);
    if (this.closed || this.watchers.size === 0 || this.#reconnect) return;
    this.#reconnect = setTimeout(
      () => {
        this.#reconnect = undefined;
        this.#ensureConnection();
      },
      backoff(this.#attempt++),
    );
  }

  /** Closes the socket when no watcher needs it, so an idle client holds none. */
  #drop(): void {
    clearTimeout(this.#idle);
    this.#idle = undefined;
    clearTimeout(this.#reconnect);
    this.#reconnect = undefined;
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    this.cancelling.clear();
    const conn = this.#conn;
    this.#conn = undefined;
    conn?.socket.close();
  }
}

/**
 * How the HTTP hub notices a stall: a streaming POST cannot carry a progress
 * request, so when a stream has been quiet for `progressInterval`, its member
 * is asked for its status; no answer within `progressTimeout` (a stopped or
 * cut-off member) ends the stream, and the watcher resumes elsewhere.
 */
export class HttpWatchHub extends BaseHub {
  readonly #timings: WatchTimings;
  readonly #requests = new Map<AnyWatcher, AbortController>();
  /** One liveness probe per member at a time, shared by its quiet streams. */
  readonly #probes = new Map<string, Promise<boolean>>();

  constructor(transport: Transport, timings: WatchTimings) {
    super(transport);
    this.#timings = timings;
  }

  protected started(watcher: AnyWatcher): void {
    void this.#run(watcher);
  }

  protected stopped(watcher: AnyWatcher): void {
    this.#requests.get(watcher)?.abort();
    this.#requests.delete(watcher);
  }

  // One watcher per request: refusals are routed to it directly.
  protected oldestPending(): AnyWatcher | undefined {
    return undefined;
  }

  protected answered(): void {}

  /** One request per watcher, re-opened from the watcher's next revision until it ends. */
  async #run(watcher: AnyWatcher): Promise<void> {
    for (let attempt = 0; this.watchers.get(watcher.id) === watcher; ) {
      const controller = new AbortController();
      this.#requests.set(watcher, controller);
      let failure: Error;
      let stalled: { url: string; error: Error } | undefined;
      let watchdog: NodeJS.Timeout | undefined;
      try {
        const { body, url } = await this.transport.stream(
          'watch',
          { create_request: watcher.createRequest() },
          controller.signal,
          // Ask the member to end the stream when it loses its leader, rather than go quiet.
          REQUIRE_LEADER,
        );
        let last = Date.now();
        watchdog = this.#watchdog(
          url,
          () => last,
          (error) => {
            stalled = { url, error };
            controller.abort(error);
          },
        );
        const parser = new NdjsonParser();
        failure = new UnavailableError('the watch stream ended');
        for await (const chunk of body) {
          last = Date.now();
          // What came before a bad line is delivered; then the stream is re-opened.
          const error = this.#routeAll(parser.push(chunk), watcher) ?? parser.error;
          if (error) {
            failure = error;
            controller.abort();
            break;
          }
          attempt = 0;
        }
      } catch (err) {
        failure = err as Error;
      } finally {
        clearInterval(watchdog);
      }
      if (stalled) {
        failure = stalled.error;
        this.transport.rotateFrom(stalled.url, stalled.error);
      }
      if (this.watchers.get(watcher.id) !== watcher) return;
      if (
        failure instanceof EtcdError &&
        !failure.retryable &&
        !(failure instanceof UnavailableError)
      ) {
        watcher.fail(failure);
        return;
      }
      watcher.disconnected(failure);
      await sleep(backoff(attempt++), undefined, { signal: this.stopping }).catch(() => undefined);
    }
  }

  /** Routes messages in order; the first that needs the stream re-established stops it. */
  #routeAll(messages: unknown[], watcher: AnyWatcher): Error | undefined {
    for (const message of messages) {
      const error = this.route(message, watcher);
      if (error) return error;
    }
    return undefined;
  }

  /** Checks a stream to `url` whose last message came at `last()`; calls `stall` when its member is gone. */
  #watchdog(url: string, last: () => number, stall: (error: Error) => void): NodeJS.Timeout {
    const { progressInterval, progressTimeout } = this.#timings;
    const timer = setInterval(
      () => {
        if (Date.now() - last() < progressInterval) return;
        let probe = this.#probes.get(url);
        if (!probe) {
          probe = this.transport.answers(url, progressTimeout);
          this.#probes.set(url, probe);
          void probe.finally(() => this.#probes.delete(url));
        }
        void probe.then((alive) => {
          if (!alive) stall(new UnavailableError(`watch stream to ${url} stalled`));
        });
      },
      Math.max(10, progressInterval / 2),
    );
    timer.unref();
    return timer;
  }
}
