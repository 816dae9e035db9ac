/**
 * What Mutex, RWMutex and Semaphore share: finding the session, giving each
 * contender its own queue key, and waiting under the caller's signal, the
 * caller's timeout and the session's life at once.
 *
 * Keys: etcd's Go client and etcdctl use `<prefix><lease hex>`. Contenders in
 * one process usually share one session (one lease), so the first of them
 * takes that key and each further concurrent one `<prefix><lease hex>_<n>`.
 * Order in the queue is by create revision only, so every contender, here or
 * in a Go service or etcdctl, still waits its turn.
 */
import {
  ClientClosedError,
  Compare,
  type Etcd,
  giveUpSignal,
  InvalidArgumentError,
  isClient,
  joinQueue,
  type KeyValue,
  keepTrying,
  Op,
  type QueueEntry,
  queueKey,
  Session,
  SessionExpiredError,
  type Turn,
  untilAborted,
} from '@etcdkit/client';
import { LockTimeoutError } from './errors.js';
import { Lock } from './lock.js';

/** Where locks live: a session, or a client whose shared session is used. */
export type LockTarget = Session | Etcd<unknown>;

export interface AcquireOptions {
  /** Give up waiting: rejects with `signal.reason`, and the place in the queue is given up. */
  signal?: AbortSignal | undefined;
  /** Give up after this many ms with LockTimeoutError. Default: wait as long as it takes. */
  timeout?: number | undefined;
}

const ACQUIRE_OPTIONS = ['signal', 'timeout'];

/** Checks the options every acquire takes, and refuses names other than those and `more`. */
export function checkAcquireOptions(
  method: string,
  options: object,
  more: readonly string[] = [],
): void {
  const known = [...ACQUIRE_OPTIONS, ...more];
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) {
      throw new InvalidArgumentError(
        `${method}: unknown option "${name}" (known: ${known.join(', ')})`,
      );
    }
  }
  const { timeout } = options as AcquireOptions;
  if (timeout !== undefined && !(Number.isFinite(timeout) && timeout >= 0)) {
    throw new InvalidArgumentError(`${method}: timeout must be a number of ms >= 0`);
  }
}

/** Checks a lock name and returns its key prefix (`name/`). */
export function prefixFor(kind: string, name: string): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError(`${kind} name must be a non-empty string`);
  }
  if (name.endsWith('/')) {
    throw new InvalidArgumentError(`${kind} name must not end with "/": the separator is added`);
  }
  return `${name}/`;
}

/** What locks are kept by: a Session or a client, of any copy of the client package. */
export function checkTarget(kind: string, target: unknown): LockTarget {
  if (target instanceof Session || isClient(target)) return target;
  throw new InvalidArgumentError(
    `new ${kind}(target, name): target must be an Etcd client or a Session, got ${typeof target}`,
  );
}

export async function resolveSession(target: LockTarget, signal: AbortSignal): Promise<Session> {
  // The shared session is not created under this caller's signal: others may be waiting for it.
  const session =
    target instanceof Session ? target : await untilAborted(target.sharedSession(), signal);
  if (!session.alive) throw new SessionExpiredError('the session is closed or its lease was lost');
  return session;
}

const claimed = new WeakMap<Session, Set<string>>();

/** A queue key no other contender of this process holds, released with `free()`. */
export interface Claim {
  key: string;
  free(): void;
}

export function claimKey(session: Session, prefix: string): Claim {
  let keys = claimed.get(session);
  if (!keys) {
    keys = new Set();
    claimed.set(session, keys);
  }
  const base = queueKey(prefix, session.lease);
  let key = base;
  for (let n = 1; keys.has(key); n++) key = `${base}_${n}`;
  keys.add(key);
  const owned = keys;
  return { key, free: () => owned.delete(key) };
}

/** Each try to delete a queue place given up is bounded so; tries go on with backoff. */
const LEAVE_TIMEOUT_MS = 5_000;

/**
 * Gives up a queue place: deletes the key if it is still the one created at
 * `token`. Tried until it works, while `signal` (the session's, at least)
 * holds: a key left behind on a live lease would block the queue for good,
 * while one on a lost lease goes with it. Never rejects.
 */
export async function leaveQueue(
  session: Session,
  key: string,
  token: bigint | undefined,
  signal: AbortSignal = session.signal,
): Promise<void> {
  const txn = session.client.txn();
  if (token !== undefined) txn.if(Compare.createRevision(key, '=', token));
  txn.success(Op.delete(key));
  await keepTrying(
    () =>
      txn.commit({ timeout: LEAVE_TIMEOUT_MS }).then(
        () => true,
        (err: unknown) => err instanceof ClientClosedError,
      ),
    signal,
  );
}

/** After waiting: the key (`kv`, as read last) must still be ours, and the session alive. */
export function confirmHeld(
  session: Session,
  key: string,
  token: bigint,
  kv: KeyValue<unknown> | undefined,
): void {
  if (!kv || kv.createRevision !== token || !session.alive) {
    throw new SessionExpiredError(
      `the queue key ${key} is gone: the session's lease was lost while waiting`,
    );
  }
}

/** One try to create `key` in the queue; `existed` when the key was there already. */
export type Join = (
  session: Session,
  key: string,
  signal: AbortSignal | undefined,
) => Promise<QueueEntry<unknown>>;

/** The join of Mutex and RWMutex: the key with an empty value, as etcdctl stores it. */
export function joinEmpty(prefix: string): Join {
  return (session, key, signal) =>
    joinQueue(session.client, prefix, key, session.lease, '', { signal });
}

/**
 * Joins the queue with `key` on the session's lease, by `join`. A key that
 * exists already is not this contender's (a release whose outcome was
 * unknown, an earlier run on the same lease): taking it over would reuse an
 * old token, so it is deleted, guarded by its create revision, and the
 * contender joins anew at the back.
 */
export async function joinAs(
  session: Session,
  join: Join,
  key: string,
  signal: AbortSignal | undefined,
): Promise<QueueEntry<unknown>> {
  for (let attempt = 0; ; attempt++) {
    const entry = await join(session, key, signal);
    if (!entry.existed) return entry;
    if (attempt >= 2) throw new SessionExpiredError(`cannot clear the stale queue key ${key}`);
    await leaveQueue(
      session,
      key,
      entry.createRevision,
      signal ? AbortSignal.any([signal, session.signal]) : session.signal,
    );
  }
}

/** Where a contender queues: its own key's prefix, and the prefix of the whole lock. */
export interface Place {
  /** The prefix of the contender's key. */
  own: string;
  /** The prefix the client's shared queue view watches: the whole lock (`name/`). */
  scope: string;
  /** How the key is created. Default: with an empty value (`joinEmpty(own)`). */
  join?: Join | undefined;
}

/** A turn that has come, with what the release must do besides deleting the key. */
export interface Held extends Turn {
  /** Operations the release runs in the same txn as the key's delete, under its guard. */
  releaseOps?: readonly Op[] | undefined;
}

/**
 * Joins the queue under `place.own` and waits for the turn, the flow every
 * primitive shares. `turn` looks at the join's result: it returns nothing
 * when the contender holds at once, a wait to run otherwise, or throws (as
 * tryLock does). Every step runs under the caller's signal and timeout, so
 * giving up is prompt even when etcd hangs; the place in the queue is then
 * given up in the background.
 */
export async function acquire(
  target: LockTarget,
  place: Place,
  options: AcquireOptions,
  turn: (
    session: Session,
    entry: QueueEntry<unknown>,
  ) => ((signal: AbortSignal) => Promise<Held>) | undefined,
): Promise<Lock> {
  const giveUp = giveUpSignal(
    options,
    (ms) => new LockTimeoutError(`not acquired within ${ms} ms`),
  );
  try {
    giveUp.signal.throwIfAborted();
    const session = await resolveSession(target, giveUp.signal);
    const claim = claimKey(session, place.own);
    // Waiting also ends when the lease is lost: a key without a lease holds nothing.
    const signal = AbortSignal.any([giveUp.signal, session.signal]);
    let token: bigint | undefined;
    let joining: Promise<QueueEntry<unknown>> | undefined;
    try {
      const join = place.join ?? joinEmpty(place.own);
      // The join runs to its end even when the caller gives up first: a create
      // still on its way to etcd could otherwise land after the clean-up's
      // delete and leave a key on a live lease. The caller gives up at once.
      joining = joinAs(session, join, claim.key, session.signal);
      const entry = await untilAborted(joining, signal);
      token = entry.createRevision;
      const wait = turn(session, entry);
      let releaseOps: readonly Op[] = [];
      if (wait) {
        const held = await wait(signal);
        confirmHeld(session, claim.key, token, held.own);
        releaseOps = held.releaseOps ?? [];
      }
      return new Lock(session, claim, token, place.scope, releaseOps);
    } catch (err) {
      // The key stays claimed until it is gone, so no later contender here reuses it meanwhile.
      // A join cut short is waited for, so the delete comes after its create, guarded by it.
      const created =
        token !== undefined || joining === undefined
          ? Promise.resolve(token)
          : joining.then(
              (entry) => entry.createRevision,
              () => undefined,
            );
      void created
        .then((revision) => leaveQueue(session, claim.key, revision))
        .finally(() => claim.free());
      // Prefer the reason that ended the wait over whatever the wait rejected with.
      throw signal.aborted ? signal.reason : err;
    }
  } finally {
    giveUp.dispose();
  }
}
