/**
 * A barrier: while its key exists, `wait()` blocks; deleting the key lets
 * every waiter through.
 *
 * How it works, as etcd's Go `contrib/recipes` Barrier, on the same key:
 * `hold()` creates the key with an empty value, by a txn that compares
 * `create_revision == 0`, so a second hold fails; `release()` deletes it;
 * `wait()` watches the key from now, then reads it, and returns once it is
 * absent. So Go and etcdkit processes hold, release and wait on one barrier.
 */
import {
  Compare,
  checkOptions,
  type Etcd,
  Op,
  type Session,
  SessionExpiredError,
} from '@etcdkit/client';
import { checkClient, checkKey, SIGNAL_ONLY } from './checks.js';
import { BarrierHeldError } from './errors.js';
import { viewKeys } from './key-view.js';

export interface HoldOptions {
  signal?: AbortSignal | undefined;
  /**
   * Attach the key to this session's lease, so the barrier lifts by itself
   * when the holder's session ends (a crashed holder blocks no one for
   * longer than its TTL). Default: no lease, as in Go: the key stays until
   * `release()`.
   */
  session?: Session | undefined;
}

export interface WaitOptions {
  /** Stop waiting: rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
}

export class Barrier {
  /** The barrier's key. */
  readonly key: string;
  readonly #etcd: Etcd<unknown>;

  constructor(etcd: Etcd<unknown>, key: string) {
    this.#etcd = checkClient('Barrier', etcd);
    this.key = checkKey('barrier', key);
  }

  /**
   * Creates the barrier key, so that `wait()` blocks. Rejects with
   * BarrierHeldError if the key exists already (Go's `ErrKeyExists`). A
   * hold whose outcome was unknown (an indeterminate error) may have
   * created the key: a second hold then reports it held.
   */
  async hold(options: HoldOptions = {}): Promise<void> {
    checkOptions('hold', options, new Set(['signal', 'session']));
    const { signal, session } = options;
    if (session && !session.alive) {
      throw new SessionExpiredError('the session is closed or its lease was lost');
    }
    const put = Op.putRaw(this.key, '', session ? { lease: session.lease } : {});
    const r = await this.#etcd
      .txn()
      .if(Compare.createRevision(this.key, '=', 0n))
      .success(put)
      .failure(Op.get(this.key))
      .commit({ signal });
    if (r.succeeded) return;
    const [existing] = r.results;
    const holder = existing?.type === 'range' ? existing.kvs[0]?.createRevision : undefined;
    throw new BarrierHeldError(`the barrier ${this.key} is held already`, holder);
  }

  /**
   * Deletes the barrier key: every waiter goes on. Resolves true if the key
   * was there, false if the barrier was not held (which is no error, as in Go).
   */
  async release(options: WaitOptions = {}): Promise<boolean> {
    checkOptions('release', options, SIGNAL_ONLY);
    const r = await this.#etcd.delete(this.key, { signal: options.signal });
    return r.deleted > 0;
  }

  /** Whether the barrier key exists now. */
  async held(options: WaitOptions = {}): Promise<boolean> {
    checkOptions('held', options, SIGNAL_ONLY);
    return (await this.#etcd.get(this.key, { signal: options.signal })) !== undefined;
  }

  /**
   * Resolves once the barrier key does not exist: at once if it is not held,
   * else when it is released (or its lease ends).
   */
  async wait(options: WaitOptions = {}): Promise<void> {
    checkOptions('wait', options, SIGNAL_ONLY);
    // Returning from the loop ends the view, and with it the watch.
    for await (const { kvs } of viewKeys(this.#etcd, this.key, false, options.signal)) {
      if (kvs.size === 0) return;
    }
  }
}
