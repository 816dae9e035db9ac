/**
 * Every watcher of a client on one bidirectional stream of its transport: the
 * gateway's WebSocket to `<apiPrefix>/watch`, or gRPC's Watch stream.
 *
 * How it works: watchers are created on the stream as soon as it is open.
 * When nothing has arrived for `progressInterval` it sends a progress
 * request; if that goes unanswered for `progressTimeout` the stream counts as
 * stalled. A stalled, closed or failed stream is torn down, every watcher is
 * told it was disconnected, and after a backoff a new stream (on the next
 * endpoint) re-creates each watcher from its next revision.
 */
import { UnavailableError } from './errors.js';
import type { MessageStream, Transport } from './transport.js';
import { BaseHub, backoff, type WatchTimings } from './watch-hub.js';
import type { HubWatcher } from './watcher.js';
import type { Json } from './wire.js';

type AnyWatcher = HubWatcher;

/** How long a watch stream without watchers stays open for the next one. */
const IDLE_SOCKET_MS = 1_000;

interface Connection {
  stream: MessageStream;
  url: string;
  open: boolean;
  lastMessage: number;
  progressSent: number;
  /** IDs whose create request was sent and not yet answered, oldest first. */
  pending: number[];
  /** When the member was last asked whether it has a leader. */
  leaderChecked: number;
}

export class StreamWatchHub extends BaseHub {
  readonly #timings: WatchTimings;
  #conn: Connection | undefined;
  #attempt = 0;
  #reconnect: NodeJS.Timeout | undefined;
  #ticker: NodeJS.Timeout | undefined;
  #idle: NodeJS.Timeout | undefined;
  /** A stream is being opened: no second one meanwhile. */
  #opening = false;
  /** Streams opened so far: lets tests check that watchers share one. */
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
    if (this.#conn || this.#opening || this.#reconnect || this.closed) return;
    void this.#connect();
  }

  async #connect(): Promise<void> {
    const url = this.transport.currentEndpoint;
    this.#opening = true;
    let stream: MessageStream;
    try {
      stream = await this.transport.openStream('watch', url);
    } catch (err) {
      // No member could be asked (unreachable, TLS refused): the watchers hear why.
      for (const watcher of [...this.watchers.values()]) watcher.disconnected(err as Error);
      this.#retryLater(url, err as Error);
      return;
    } finally {
      this.#opening = false;
    }
    if (this.closed || this.watchers.size === 0 || this.#conn) {
      stream.destroy();
      return;
    }
    const conn: Connection = {
      stream,
      url,
      open: false,
      lastMessage: Date.now(),
      progressSent: 0,
      pending: [],
      leaderChecked: Date.now(),
    };
    this.#conn = conn;
    this.socketsOpened++;
    stream.onopen = () => {
      conn.open = true;
      conn.lastMessage = Date.now();
      for (const watcher of this.watchers.values()) this.#create(conn, watcher);
    };
    stream.onmessage = (message) => this.#onMessage(conn, message);
    stream.onclose = (error) => this.#broken(conn, error);
    this.#startTicker();
  }

  #onMessage(conn: Connection, message: Json): void {
    if (this.#conn !== conn) return;
    conn.lastMessage = Date.now();
    conn.progressSent = 0;
    this.#attempt = 0;
    let failure: Error | undefined;
    try {
      failure = this.route(message);
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
      conn.stream.send(message);
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
    conn.stream.destroy();
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
    conn?.stream.close();
  }
}
