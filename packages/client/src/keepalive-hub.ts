/**
 * One LeaseKeepAlive stream of the transport (the gateway's WebSocket to
 * `<apiPrefix>/lease/keepalive`, or gRPC's stream) carries the keepalives of
 * every lease of a client. A keepalive is the message `{"ID": "<lease>"}`;
 * etcd answers `{"result": {"ID", "TTL"}}`, with TTL 0 for a lease that is
 * gone. Answers are routed to the lease's listener by ID. A broken stream is
 * reopened with backoff on the next endpoint while any lease still needs it;
 * until then, sends are dropped and the sessions' own watchdogs keep time.
 * When the client authenticates and the transport's streams cannot carry the
 * token (the gateway's WebSocket proxy cannot), each keepalive is one unary
 * call instead.
 */
import { performance } from 'node:perf_hooks';
import { UnavailableError } from './errors.js';
import type { MessageStream, Transport } from './transport.js';
import { asObject, int64, type Json, optObject, smallInt } from './wire.js';

export interface KeepaliveListener {
  /** etcd answered a keepalive of this lease with `ttl` (0: the lease is gone). */
  answer(ttl: number): void;
  /** A socket opened: keepalives can be sent now. */
  ready(): void;
}

const MAX_BACKOFF_MS = 2_000;
const STALL_GRACE_MS = 1_000;

export class KeepaliveHub {
  readonly #transport: Transport;
  readonly #listeners = new Map<bigint, KeepaliveListener>();
  #socket: MessageStream | undefined;
  /** A stream is being opened: no second one meanwhile. */
  #opening = false;
  #openedAt = 0;
  /** The endpoint the current socket goes to. */
  #socketUrl = '';
  #open = false;
  #attempt = 0;
  #reconnect: NodeJS.Timeout | undefined;
  #closed = false;
  /** Sockets opened so far: lets tests check that leases share one. */
  socketsOpened = 0;

  /** Changes whenever a new socket replaces the old one: keepalives sent before are lost. */
  get generation(): number {
    return this.socketsOpened;
  }

  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /** Keepalives go as unary calls: the stream could not carry the auth token. */
  get #unary(): boolean {
    return this.#transport.authenticated && !this.#transport.streamsCarryToken;
  }

  /** Routes answers for `id` to `listener` and opens the socket if needed. */
  register(id: bigint, listener: KeepaliveListener): void {
    this.#listeners.set(id, listener);
    this.#ensure();
  }

  unregister(id: bigint): void {
    this.#listeners.delete(id);
    if (this.#listeners.size === 0) this.#drop();
  }

  /** Sends one keepalive; returns false when the socket is not open right now. */
  send(id: bigint): boolean {
    if (this.#unary) {
      if (this.#closed) return false;
      void this.#sendUnary(id);
      return true;
    }
    if (!this.#open || !this.#socket) {
      this.#ensure();
      return false;
    }
    try {
      this.#socket.send({ ID: id.toString() });
      return true;
    } catch {
      this.#broken();
      return false;
    }
  }

  async #sendUnary(id: bigint): Promise<void> {
    let ttl: number;
    try {
      const res = await this.#transport.call('lease/keepalive', { ID: id.toString() }, {}, false);
      ttl = smallInt(asObject(res.result, 'result').TTL, 'TTL');
    } catch {
      return; // unanswered: the session's watchdog keeps time
    }
    this.#listeners.get(id)?.answer(ttl);
  }

  /**
   * A session's keepalive went unanswered too long on an open socket (a hung
   * member, a black-holed link): drop the socket and reconnect elsewhere. A
   * socket younger than a second is left alone, so sessions sharing it do not
   * tear down each other's fresh connection.
   */
  stalled(): void {
    if (!this.#socket || performance.now() - this.#openedAt < STALL_GRACE_MS) return;
    this.#broken();
  }

  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#drop();
  }

  #ensure(): void {
    if (this.#unary) return;
    if (this.#socket || this.#opening || this.#reconnect || this.#closed) return;
    if (this.#listeners.size === 0) return;
    void this.#connect();
  }

  async #connect(): Promise<void> {
    const url = this.#transport.currentEndpoint;
    let socket: MessageStream;
    this.#opening = true;
    try {
      socket = await this.#transport.openStream('lease/keepalive', url);
    } catch {
      this.#retryLater(url);
      return;
    } finally {
      this.#opening = false;
    }
    if (this.#socket || this.#closed || this.#listeners.size === 0) {
      socket.destroy();
      return;
    }
    this.#socket = socket;
    this.#openedAt = performance.now();
    this.#socketUrl = url;
    this.socketsOpened++;
    socket.onopen = () => {
      this.#open = true;
      this.#attempt = 0;
      for (const listener of [...this.#listeners.values()]) listener.ready();
    };
    socket.onmessage = (message) => this.#onMessage(message);
    socket.onclose = () => this.#broken(url);
  }

  #onMessage(msg: Json): void {
    let id: bigint;
    let ttl: number;
    try {
      const result = optObject(msg.result, 'result');
      if (!result) throw new UnavailableError('keepalive stream reported an error');
      id = int64(result.ID, 'ID');
      ttl = smallInt(result.TTL, 'TTL');
    } catch {
      this.#broken();
      return;
    }
    this.#listeners.get(id)?.answer(ttl);
  }

  #broken(url = this.#socketUrl): void {
    this.#drop();
    this.#retryLater(url);
  }

  #retryLater(url: string): void {
    this.#transport.rotateFrom(url);
    if (this.#closed || this.#reconnect || this.#listeners.size === 0) return;
    const delay = Math.min(MAX_BACKOFF_MS, 50 * 2 ** this.#attempt++);
    this.#reconnect = setTimeout(() => {
      this.#reconnect = undefined;
      this.#ensure();
    }, delay);
    this.#reconnect.unref();
  }

  #drop(): void {
    clearTimeout(this.#reconnect);
    this.#reconnect = undefined;
    const socket = this.#socket;
    this.#socket = undefined;
    this.#open = false;
    socket?.destroy();
  }
}
