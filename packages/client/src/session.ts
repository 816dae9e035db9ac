/**
 * A `Session` owns one lease and keeps it alive; locks, elections and
 * registrations made with it live exactly as long as the lease does.
 *
 * How it works: keepalives go over the client's shared keepalive socket every
 * TTL/3, starting right after the grant. Each answer with TTL > 0 proves the
 * lease alive until (time the keepalive was sent + TTL). A watchdog on the
 * monotonic clock ends the session when that moment, less a safety margin,
 * passes without a newer answer; an answer with TTL 0 ends it at once. Ending
 * aborts `signal` and emits `lost`: from then on, nothing may assume the
 * lease still holds. `close()` revokes the lease; `orphan()` leaves it to
 * expire.
 */
import { performance } from 'node:perf_hooks';
import { EventEmitter } from 'eventemitter3';
import { isBranded, SESSION_BRAND } from './brand.js';
import type { Etcd } from './client.js';
import type { Context } from './context.js';
import {
  ClientClosedError,
  EtcdError,
  InvalidArgumentError,
  LeaseNotFoundError,
} from './errors.js';
import type { KeepaliveHub } from './keepalive-hub.js';
import { grant, keepalive, leaseHex, revoke } from './lease.js';
import { checkOptions, type LeaseId, optionSet, toLeaseId } from './options.js';
import type { CallOptions } from './transport.js';

export interface SessionOptions extends CallOptions {
  /** Lease TTL in seconds. Default: the client's `sessionTtl` (15 s unless set). */
  ttl?: number | undefined;
  /** Resume this existing lease (e.g. after a restart) instead of granting a new one. */
  lease?: LeaseId | undefined;
}

/** `alive` until the lease is `lost`, or until its owner `closed` (or orphaned) it. */
export type SessionState = 'alive' | 'lost' | 'closed';

export interface SessionEvents {
  /**
   * A keepalive answer is overdue: the lease cannot have expired yet, but it is
   * at risk. `resumed` or `lost` follows. Work that must not run unprotected can pause here.
   */
  suspended: [];
  /** An answer came after `suspended`: the lease is proven alive again. */
  resumed: [];
  /** The lease is gone, or can no longer be proven alive. */
  lost: [error: SessionExpiredError];
  /** The lease was renewed; `ttl` is what etcd granted. */
  renewed: [ttl: number];
  /** The session was closed or orphaned by its owner. */
  closed: [];
}

/** The session's lease expired, was revoked, or could not be renewed in time. */
export class SessionExpiredError extends EtcdError {
  override readonly name = 'SessionExpiredError' as const;
  override readonly code = 'ETCDKIT_SESSION_EXPIRED' as const;
}

/**
 * The default lease TTL of sessions, in seconds: how long, after a holder
 * crashes, its locks, leaderships and registrations stay taken. Go's
 * `concurrency` uses 60 s, Kubernetes' leader election 15 s. 15 s lets the
 * next holder in after a crash within a quarter of a minute, and still rides
 * out what a healthy cluster does: a raft leader election (a few seconds at
 * most), a reconnect to another member, a GC pause of seconds. It costs one
 * small keepalive every 5 s per session. Set `sessionTtl` on the client to choose.
 */
export const DEFAULT_SESSION_TTL = 15;
/** A keepalive answer is not called overdue sooner than this: a loaded member may be slow. */
const OVERDUE_MIN_MS = 1_000;
const SESSION_OPTIONS = optionSet('ttl', 'lease');

export class Session extends EventEmitter<SessionEvents> {
  /** True for sessions made by any copy of this package (see brand.ts). */
  static override [Symbol.hasInstance](value: unknown): value is Session {
    return isBranded(value, SESSION_BRAND, Session);
  }

  /** The lease this session keeps alive. */
  readonly lease: bigint;
  /** The lease's TTL in seconds. */
  readonly ttl: number;
  /** The client this session belongs to. */
  readonly client: Etcd<unknown>;
  readonly #ctx: Context<unknown>;
  readonly #hub: KeepaliveHub;
  readonly #abort = new AbortController();
  #aliveUntil: number;
  #inFlight: number[] = [];
  #lastSent = -Infinity;
  #generation = -1;
  #timer: NodeJS.Timeout | undefined;
  #overdue: NodeJS.Timeout | undefined;
  /** Fires when the proven life of the lease, less the margin, runs out. */
  #deadline: NodeJS.Timeout | undefined;
  #suspended = false;
  #state: SessionState = 'alive';
  /** Orphaned: the lease is left to expire, so close() does not revoke it. */
  #orphaned = false;
  #closing: Promise<void> | undefined;

  private constructor(
    client: Etcd<unknown>,
    ctx: Context<unknown>,
    hub: KeepaliveHub,
    lease: bigint,
    ttl: number,
    sentAt: number,
  ) {
    super();
    this.client = client;
    this.#ctx = ctx;
    this.#hub = hub;
    this.lease = lease;
    this.ttl = ttl;
    this.#aliveUntil = sentAt + ttl * 1000;
    hub.register(lease, {
      answer: (ttl) => this.#onAnswer(ttl),
      // The first keepalive goes out as soon as the socket opens, not at the next tick.
      ready: () => this.#tick(),
    });
    const every = Math.max(50, Math.floor((ttl * 1000) / 3));
    this.#timer = setInterval(() => this.#tick(), Math.min(every, this.#margin()));
    this.#armDeadline();
    this.#tick();
  }

  /** @internal use `client.session()`. */
  static async create(
    client: Etcd<unknown>,
    ctx: Context<unknown>,
    hub: KeepaliveHub,
    options: SessionOptions = {},
    defaultTtl = DEFAULT_SESSION_TTL,
  ): Promise<Session> {
    checkOptions('session', options, SESSION_OPTIONS);
    const call = { signal: options.signal, timeout: options.timeout };
    const sentAt = performance.now();
    if (options.lease !== undefined) {
      const id = toLeaseId(options.lease, 'lease', 1n);
      const renewed = await keepalive(ctx, id, call);
      return new Session(client, ctx, hub, id, renewed.ttl, sentAt);
    }
    const ttl = options.ttl ?? defaultTtl;
    if (!Number.isSafeInteger(ttl) || ttl < 1) {
      throw new InvalidArgumentError(
        `session ttl must be a whole number of seconds >= 1, got ${ttl}`,
      );
    }
    const lease = await grant(ctx, ttl, call);
    return new Session(client, ctx, hub, lease.id, lease.ttl, sentAt);
  }

  /** Aborts when the lease is lost (or may be): use it to stop work that needs the lease. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** True until the lease is lost or the session closed. */
  get alive(): boolean {
    return this.#state === 'alive';
  }

  /** Whether the session is alive, lost, or closed by its owner. */
  get state(): SessionState {
    return this.#state;
  }

  /** The lease ID as etcd and etcdctl print it: lower-case hex. */
  get leaseHex(): string {
    return leaseHex(this.lease);
  }

  /** Milliseconds of lease life still proven, by the monotonic clock. */
  get remaining(): number {
    return Math.max(0, this.#aliveUntil - performance.now());
  }

  /** The margin kept before the proven end of the lease: a tenth of the TTL, at least 100 ms. */
  #margin(): number {
    return Math.max(100, (this.ttl * 1000) / 10);
  }

  /** Ends the session the moment its proven life, less the margin, runs out: not at a later tick. */
  #armDeadline(): void {
    clearTimeout(this.#deadline);
    const at = this.#aliveUntil - this.#margin() - performance.now();
    this.#deadline = setTimeout(() => this.#tick(), Math.max(0, at));
    this.#deadline.unref();
  }

  /** Whether a keepalive answer is overdue right now (between `suspended` and `resumed`/`lost`). */
  get suspended(): boolean {
    return this.#suspended;
  }

  /** How long an answer may take before its stream counts as stuck: a period, or less. */
  #overdueAfter(): number {
    return Math.min((this.ttl * 1000) / 3, Math.max(OVERDUE_MIN_MS, this.#margin()));
  }

  #tick(): void {
    if (this.#state !== 'alive') return;
    const now = performance.now();
    if (now >= this.#aliveUntil - this.#margin()) {
      this.#lose(
        new SessionExpiredError(
          `lease ${this.leaseHex} could not be renewed before its TTL ran out`,
        ),
      );
      return;
    }
    // Keepalives sent on a socket that has since been replaced will never be answered.
    if (this.#hub.generation !== this.#generation) {
      this.#generation = this.#hub.generation;
      this.#inFlight = [];
      this.#lastSent = -Infinity;
    }
    // An answer this overdue means the stream is stuck (a hung member): move it,
    // early enough that a keepalive on another member still lands in time. What
    // was sent is not forgotten: a late answer on the same socket still pairs
    // with its own send, never with a newer one that would overstate the lease.
    const oldest = this.#inFlight[0];
    if (oldest !== undefined && now - oldest > this.#overdueAfter()) {
      if (!this.#suspended) {
        this.#suspended = true;
        this.emit('suspended');
      }
      this.#hub.stalled();
    }
    // Keepalive every TTL/3. Answers come back in order, so each pairs with the oldest send.
    if (now - this.#lastSent >= (this.ttl * 1000) / 3 && this.#hub.send(this.lease)) {
      this.#lastSent = now;
      this.#inFlight.push(now);
      // Look again the moment this one would be overdue, not at the next regular tick.
      clearTimeout(this.#overdue);
      this.#overdue = setTimeout(() => this.#tick(), this.#overdueAfter() + 1);
      this.#overdue.unref();
    }
  }

  #onAnswer(ttl: number): void {
    if (this.#state !== 'alive') return;
    const sentAt = this.#inFlight.shift();
    if (ttl <= 0) {
      this.#lose(
        new SessionExpiredError(`lease ${this.leaseHex} expired or was revoked`, {
          cause: new LeaseNotFoundError('lease not found'),
        }),
      );
      return;
    }
    if (sentAt !== undefined && sentAt + ttl * 1000 > this.#aliveUntil) {
      this.#aliveUntil = sentAt + ttl * 1000;
      this.#armDeadline();
    }
    this.emit('renewed', ttl);
    if (this.#suspended && this.#inFlight.length === 0) {
      this.#suspended = false;
      this.emit('resumed');
    }
  }

  #lose(error: SessionExpiredError): void {
    if (this.#state !== 'alive') return;
    this.#stop('lost');
    this.#abort.abort(error);
    this.emit('lost', error);
  }

  #stop(state: 'lost' | 'closed'): void {
    this.#state = state;
    clearInterval(this.#timer);
    clearTimeout(this.#overdue);
    clearTimeout(this.#deadline);
    this.#hub.unregister(this.lease);
  }

  /**
   * Stops keepalive and revokes the lease, deleting every key attached to it,
   * also after the session was lost (the lease may outlive what could be
   * proven). Idempotent; a lease already gone is fine.
   */
  close(options: CallOptions = {}): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#state === 'alive') {
        this.#stop('closed');
        this.#abort.abort(new SessionExpiredError('the session was closed'));
        this.emit('closed');
      }
      if (this.#orphaned) return;
      const once = () =>
        revoke(this.#ctx, this.lease, options).catch((err: unknown) => {
          if (!(err instanceof LeaseNotFoundError)) throw err;
        });
      // A revoke whose answer was lost may have been applied: asking again is
      // safe, since a lease already gone answers "not found".
      await once().catch((err: unknown) => {
        if (err instanceof EtcdError && err.indeterminate && !(err instanceof ClientClosedError)) {
          return once();
        }
        throw err;
      });
    })();
    return this.#closing;
  }

  /** Stops keepalive but leaves the lease to expire by its TTL (for a hand-over or resume). */
  orphan(): void {
    if (this.#state !== 'alive') return;
    this.#orphaned = true;
    this.#stop('closed');
    this.#abort.abort(new SessionExpiredError('the session was orphaned'));
    this.emit('closed');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
Object.defineProperty(Session.prototype, SESSION_BRAND, { value: true });
