/**
 * A `Registration` keeps one instance's key in etcd until it is deregistered.
 *
 * How it works: the key `<prefix>/<service>/<id>` is put on a session's lease,
 * so it lives exactly as long as the lease. When the session is lost (lease
 * expired, revoked from outside, keepalives unanswered) the registration takes
 * a new session and puts the key again, retrying with backoff until that
 * works or it is deregistered; only then is the old lease revoked, so a key
 * that survived on it does not blink. Every write of the key (first put,
 * update, re-registration) runs one at a time, in order, and writes the latest
 * value, so the stored value never goes back. `deregister()` may first mark the
 * instance `draining` and wait, then revokes the lease: the key goes at once.
 * A health check (health-check.ts), if given, stores each change of health
 * with the same ordered writes on the same lease.
 */
import { performance } from 'node:perf_hooks';
import {
  type CallOptions,
  ClientClosedError,
  type Etcd,
  LeaseNotFoundError,
  leaseHex,
  Op,
  type Session,
  SessionExpiredError,
} from '@etcdkit/client';
import { EventEmitter } from 'eventemitter3';
import { backoff, isTransient, retryUntil, sleep } from './backoff.js';
import { DeregisteredError } from './errors.js';
import { HealthCheck, type HealthConfig, type HealthState } from './health-check.js';
import { encodeRecord, type InstanceDescription, type InstanceRecord } from './instance.js';
import { SessionProvider, type SessionSource } from './session-provider.js';
import {
  checkAddress,
  checkDuration,
  checkMetadata,
  checkOptions,
  checkPort,
  checkStatus,
  checkWeight,
  checkZone,
  type InstanceStatus,
} from './validate.js';

/**
 * Attempts of the first registration, and of the removal, on errors that may
 * pass (a leader election, a timeout): about two seconds of retries.
 */
const ATTEMPTS = 5;

export interface RegistrationEvents {
  /** The key was written on a new lease: after `register()` (before it resolves) and after each loss. */
  registered: [lease: bigint, revision: bigint];
  /** The lease was lost; the key may be gone. Re-registration starts at once. */
  lost: [error: SessionExpiredError];
  /** The key is back after a loss, on a new lease; `downtime` in ms since the loss was noticed. */
  reregistered: [lease: bigint, downtime: number];
  /** An attempt to register again, or to store a change of health, failed; the next follows after a backoff. */
  failed: [error: Error, attempt: number];
  /** The health check changed the instance's health; the change is being stored. */
  healthChanged: [state: HealthState];
  /** The stored value was changed by `update()` or by draining. */
  updated: [revision: bigint];
  /** The registration ended; its key is gone (or goes with its lease's TTL if etcd was unreachable). */
  deregistered: [];
}

/** What `update()` can change. `zone: null` removes the zone. */
export interface RegistrationUpdate {
  address?: string | undefined;
  port?: number | undefined;
  metadata?: InstanceDescription['metadata'];
  weight?: number | undefined;
  zone?: string | null | undefined;
  status?: InstanceStatus | undefined;
}

export interface DeregisterOptions extends CallOptions {
  /**
   * First store the instance as `draining` and wait this many ms, so consumers
   * stop picking it while it finishes its work; then remove it. Default 0.
   */
  drain?: number | undefined;
}

const UPDATE_FIELDS = ['address', 'port', 'metadata', 'weight', 'zone', 'status'];
const DEREGISTER_OPTIONS = ['drain', 'signal', 'timeout'];
const CALL_OPTIONS = ['signal', 'timeout'];

export class Registration extends EventEmitter<RegistrationEvents> {
  readonly service: string;
  readonly id: string;
  /** The key holding the instance, relative to the client's keyPrefix. */
  readonly key: string;
  readonly #client: Etcd<unknown>;
  readonly #sessions: SessionProvider;
  readonly #timeout: number | undefined;
  /** Aborted when deregistration starts removing the key: stops every retry. */
  readonly #stop = new AbortController();
  #record: InstanceRecord;
  /** The session the key was last written on; the registration is active when it is alive. */
  #writtenOn: Session | undefined;
  #lostAt: number | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #recovering: Promise<void> | undefined;
  #deregistering: Promise<void> | undefined;
  #health: HealthCheck | undefined;

  private constructor(
    client: Etcd<unknown>,
    service: string,
    key: string,
    record: InstanceRecord,
    source: SessionSource,
    timeout: number | undefined,
  ) {
    super();
    this.#client = client;
    this.service = service;
    this.id = record.id;
    this.key = key;
    this.#record = record;
    this.#sessions = new SessionProvider(client, source, (session, error) =>
      this.#lost(session, error),
    );
    this.#timeout = timeout;
  }

  /** @internal use `registry.register()`: writes the key and resolves once it is stored. */
  static async create(
    client: Etcd<unknown>,
    service: string,
    key: string,
    record: InstanceRecord,
    source: SessionSource,
    options: CallOptions & { health?: HealthConfig | undefined },
  ): Promise<Registration> {
    const registration = new Registration(client, service, key, record, source, options.timeout);
    const signal = options.signal
      ? AbortSignal.any([options.signal, registration.#stop.signal])
      : registration.#stop.signal;
    try {
      const health = options.health && registration.#check(options.health);
      // The first check decides whether the instance appears healthy at all.
      if (health) registration.#record = { ...record, health: await health.first(signal) };
      await registration.#establish(ATTEMPTS, { signal, timeout: options.timeout });
      health?.start();
    } catch (err) {
      registration.#stop.abort(err);
      await registration.#remove({ timeout: options.timeout }).catch(() => undefined);
      throw err;
    }
    return registration;
  }

  /** The lease the key is attached to, while the registration is active. */
  get lease(): bigint | undefined {
    return this.active ? this.#writtenOn?.lease : undefined;
  }

  /** True while the key is believed stored: written on the current session, still alive. */
  get active(): boolean {
    const written = this.#writtenOn;
    return written !== undefined && written === this.#sessions.current && written.alive;
  }

  get status(): InstanceStatus {
    return this.#record.status;
  }

  /** What the health check decided last; undefined without a health check. */
  get health(): HealthState | undefined {
    return this.#record.health;
  }

  /** True once `deregister()` was called. */
  get deregistered(): boolean {
    return this.#deregistering !== undefined;
  }

  /**
   * Changes what is stored about the instance and resolves once it is written.
   * While the registration is being re-established, the change is written by
   * the re-registration and this resolves at once.
   */
  async update(changes: RegistrationUpdate, options: CallOptions = {}): Promise<void> {
    if (this.#deregistering) {
      throw new DeregisteredError(`${this.key} was deregistered and cannot be updated`);
    }
    checkOptions('update', changes, UPDATE_FIELDS);
    checkOptions('update', options, CALL_OPTIONS);
    const next: InstanceRecord = { ...this.#record };
    if (changes.address !== undefined) next.address = checkAddress(changes.address);
    if (changes.port !== undefined) next.port = checkPort(changes.port);
    if (changes.metadata !== undefined) next.metadata = checkMetadata(changes.metadata);
    if (changes.weight !== undefined) next.weight = checkWeight(changes.weight);
    if (changes.zone !== undefined)
      next.zone = changes.zone === null ? undefined : checkZone(changes.zone);
    if (changes.status !== undefined) next.status = checkStatus(changes.status);
    this.#record = next;
    await this.#rewrite(this.#call(options));
  }

  /**
   * Removes the instance: optionally stores it as `draining` and waits
   * `drain` ms, then revokes its lease (or, on a session it does not own,
   * deletes its key), so it disappears from every consumer at once.
   * Idempotent: later calls return the first call's outcome. If etcd cannot be
   * reached, this rejects, and the key goes when its lease's TTL runs out.
   */
  async deregister(options: DeregisterOptions = {}): Promise<void> {
    if (!this.#deregistering) {
      checkOptions('deregister', options, DEREGISTER_OPTIONS);
      const drain = checkDuration(options.drain ?? 0, 'drain');
      this.#deregistering = this.#deregister(drain, this.#call(options));
    }
    return this.#deregistering;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.deregister();
  }

  #call(options: CallOptions): CallOptions {
    return { signal: options.signal, timeout: options.timeout ?? this.#timeout };
  }

  async #deregister(drain: number, call: CallOptions): Promise<void> {
    let aborted: unknown;
    if (drain > 0 && this.active) {
      this.#record = { ...this.#record, status: 'draining' };
      // Draining is a courtesy to consumers: if it cannot be written, remove anyway.
      await this.#rewrite(call).catch(() => undefined);
      await sleep(drain, call.signal).catch((err: unknown) => {
        aborted = err;
      });
    }
    this.#stop.abort(new DeregisteredError(`${this.key} was deregistered`));
    await this.#health?.stopped();
    try {
      // With an aborted signal the revoke fails at once, but keepalives stop: the key
      // goes when the TTL runs out.
      await this.#remove(call);
    } finally {
      this.emit('deregistered');
    }
    if (aborted !== undefined) throw aborted;
  }

  /** A health check whose changes are stored, retried until written, superseded or stopped. */
  #check(config: HealthConfig): HealthCheck {
    const stop = this.#stop.signal;
    this.#health = new HealthCheck(config, stop, (state: HealthState) => {
      this.#record = { ...this.#record, health: state };
      this.emit('healthChanged', state);
      void retryUntil(() => this.#rewrite({ signal: stop, timeout: this.#timeout }), {
        stop,
        superseded: () => this.#record.health !== state,
        onError: (err, attempt) => this.emit('failed', err, attempt),
      });
    });
    return this.#health;
  }

  /** Runs writes one at a time, in the order they were asked for. */
  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(task, task);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Puts the latest value on `session`'s lease, bypassing the client's codec. */
  async #put(session: Session, call: CallOptions): Promise<bigint> {
    const put = Op.putRaw(this.key, encodeRecord(this.#record), { lease: session.lease });
    try {
      const result = await this.#client.txn().success(put).commit(call);
      return result.revision;
    } catch (err) {
      if (err instanceof LeaseNotFoundError) this.#leaseGone(session, err);
      throw err;
    }
  }

  /** Writes the current value again, if the registration is active; otherwise re-registration will. */
  async #rewrite(call: CallOptions): Promise<void> {
    const revision = await this.#enqueue(async () => {
      const session = this.#writtenOn;
      if (!this.active || !session) return undefined;
      try {
        return await this.#put(session, call);
      } catch (err) {
        if (err instanceof LeaseNotFoundError) return undefined; // re-registration writes it
        throw err;
      }
    });
    if (revision !== undefined) this.emit('updated', revision);
  }

  /**
   * Writes the key on a live session, taking a new session when needed.
   * Retries transient errors up to `limit` attempts (Infinity: until stopped).
   */
  async #establish(limit: number, call: CallOptions): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      call.signal?.throwIfAborted();
      try {
        let session = this.#sessions.current;
        if (!session?.alive) session = await this.#sessions.acquire(call, this.#stop.signal);
        const revision = await this.#enqueue(() => this.#put(session, call));
        if (session.alive && session === this.#sessions.current) {
          const fresh = this.#writtenOn !== session;
          this.#writtenOn = session;
          if (fresh) this.#registered(session.lease, revision);
          return;
        }
        // The session was lost while the key was written: go round again.
      } catch (err) {
        if (call.signal?.aborted) throw call.signal.reason;
        const retry =
          limit === Number.POSITIVE_INFINITY
            ? !(err instanceof ClientClosedError)
            : (isTransient(err) || err instanceof LeaseNotFoundError) && attempt + 1 < limit;
        if (!retry) throw err;
        if (limit === Number.POSITIVE_INFINITY) this.emit('failed', err as Error, attempt);
        await sleep(backoff(attempt), call.signal);
      }
    }
  }

  #registered(lease: bigint, revision: bigint): void {
    this.emit('registered', lease, revision);
    if (this.#lostAt !== undefined) {
      const downtime = performance.now() - this.#lostAt;
      this.#lostAt = undefined;
      this.emit('reregistered', lease, downtime);
    }
    void this.#sessions.revokeStale(this.#call({}));
  }

  /** etcd says the lease is gone before the session noticed: treat it as lost now. */
  #leaseGone(session: Session, cause: LeaseNotFoundError): void {
    if (session !== this.#sessions.current || this.#stop.signal.aborted) return;
    const wasActive = this.#writtenOn === session;
    this.#writtenOn = undefined;
    // Forget it first, so the re-registration starts on a new session.
    this.#sessions.release();
    if (wasActive) {
      this.#lostActive(
        new SessionExpiredError(`lease ${leaseHex(session.lease)} is gone`, { cause }),
      );
    }
  }

  #lost(session: Session, error: SessionExpiredError): void {
    if (session !== this.#sessions.current || this.#stop.signal.aborted) return;
    const wasActive = this.#writtenOn === session;
    this.#writtenOn = undefined;
    // Lost before the key was written on it: #establish is still at it.
    if (wasActive) this.#lostActive(error);
  }

  #lostActive(error: SessionExpiredError): void {
    this.#lostAt ??= performance.now();
    this.emit('lost', error);
    this.#recover();
  }

  /** Registers again until it works or the registration is stopped. */
  #recover(): void {
    this.#recovering ??= this.#recoverLoop();
  }

  async #recoverLoop(): Promise<void> {
    const call = { signal: this.#stop.signal, timeout: this.#timeout };
    for (;;) {
      try {
        await this.#establish(Number.POSITIVE_INFINITY, call);
      } catch (err) {
        // Stopped by deregister(), or the client was closed: nothing more to do.
        if (!this.#stop.signal.aborted) this.emit('failed', err as Error, -1);
        this.#recovering = undefined;
        return;
      }
      // Checked and cleared in one step, so a loss noticed meanwhile is never dropped.
      if (this.active || this.#stop.signal.aborted) {
        this.#recovering = undefined;
        return;
      }
    }
  }

  /** Waits for writes and retries to stop, then removes the key for good. */
  async #remove(call: CallOptions): Promise<void> {
    await this.#chain;
    await this.#recovering;
    this.#writtenOn = undefined;
    await this.#sessions.end(this.key, call, ATTEMPTS);
  }
}
