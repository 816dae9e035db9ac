/**
 * A `GroupView` is the live membership of a group, as one process sees it.
 *
 * How it works: the client's mirror lists the group's keys at one revision
 * and then watches from the next one, so no join or leave between the two is
 * missed, and nothing is polled. The changes of one watch batch (one etcd
 * revision, or a re-list after a compaction) are applied together and
 * announced by one `changed` event. Should the mirror fail (every member of
 * the cluster unreachable for a while), the view lists again with backoff and
 * applies the difference, so it always converges to what etcd stores.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ClientClosedError, type Etcd, type KeyValue, type Mirror } from '@etcdkit/client';
import { EventEmitter } from 'eventemitter3';
import { byId, decodeMember, type Member } from './member.js';

export interface GroupViewEvents {
  /** A member joined the group. */
  joined: [member: Member];
  /** A member left: it called leave(), its lease expired, or its key was deleted. */
  left: [member: Member];
  /** A member's capabilities were written again. */
  updated: [member: Member, previous: Member];
  /** The membership changed; `members` is all of it now, sorted by ID. */
  changed: [members: readonly Member[]];
  /** Following the group failed; the view keeps its members and lists again. */
  interrupted: [error: Error];
  /** The view stopped: closed, or its client was closed. */
  closed: [];
}

const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 2_000;

export class GroupView extends EventEmitter<GroupViewEvents> implements AsyncDisposable {
  /** The group's key prefix, `<group>/`. */
  readonly prefix: string;
  readonly #client: Etcd<unknown>;
  readonly #closed = new AbortController();
  readonly #members = new Map<string, Member>();
  #sorted: readonly Member[] | undefined;
  #mirror: Mirror<unknown> | undefined;
  #detach: (() => void) | undefined;
  #reopening: Promise<void> | undefined;
  #changed = false;
  #unlink: (() => void) | undefined;

  private constructor(client: Etcd<unknown>, prefix: string) {
    super();
    this.#client = client;
    this.prefix = prefix;
  }

  /** @internal use `group.view()`: resolves once the first listing is complete. */
  static async open(
    client: Etcd<unknown>,
    prefix: string,
    signal: AbortSignal | undefined,
  ): Promise<GroupView> {
    signal?.throwIfAborted();
    const view = new GroupView(client, prefix);
    if (signal) {
      const onAbort = () => void view.close();
      signal.addEventListener('abort', onAbort, { once: true });
      view.#unlink = () => signal.removeEventListener('abort', onAbort);
    }
    try {
      view.#adopt(await client.mirror(prefix, { signal: view.#closed.signal }));
    } catch (err) {
      await view.close();
      throw signal?.aborted ? signal.reason : err;
    }
    return view;
  }

  /** Every member, sorted by ID. */
  members(): readonly Member[] {
    this.#sorted ??= Object.freeze([...this.#members.values()].sort(byId));
    return this.#sorted;
  }

  /** The member with this ID, if it is in the group. */
  get(id: string): Member | undefined {
    return this.#members.get(id);
  }

  has(id: string): boolean {
    return this.#members.has(id);
  }

  get size(): number {
    return this.#members.size;
  }

  /** The store revision the view reflects. */
  get revision(): bigint {
    return this.#mirror?.revision ?? 0n;
  }

  /** True until `close()`. */
  get open(): boolean {
    return !this.#closed.signal.aborted;
  }

  /** Stops following the group. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort();
    this.#unlink?.();
    this.#detach?.();
    await Promise.all([this.#mirror?.close(), this.#reopening]);
    this.emit('closed');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Takes over a freshly listed mirror: applies the difference, then follows its events. */
  #adopt(mirror: Mirror<unknown>): void {
    this.#mirror = mirror;
    const seen = new Set<string>();
    for (const kv of mirror.values()) {
      const member = this.#put(kv);
      if (member) seen.add(member.id);
    }
    for (const [id, member] of this.#members) if (!seen.has(id)) this.#remove(member);
    this.#flush();
    const onPut = (kv: KeyValue<unknown>) => {
      if (this.#put(kv)) this.#flushSoon();
    };
    const onRemoved = (kv: KeyValue<unknown>) => {
      const member = decodeMember(this.prefix, kv);
      const current = member && this.#members.get(member.id);
      if (current) {
        this.#remove(current);
        this.#flushSoon();
      }
    };
    const onError = (error: Error) => this.#reopen(error);
    mirror.on('added', onPut).on('updated', onPut).on('removed', onRemoved).on('error', onError);
    this.#detach = () => {
      mirror
        .off('added', onPut)
        .off('updated', onPut)
        .off('removed', onRemoved)
        .off('error', onError);
    };
  }

  #put(kv: KeyValue<unknown>): Member | undefined {
    const member = decodeMember(this.prefix, kv);
    if (!member) return undefined;
    const previous = this.#members.get(member.id);
    if (previous?.modRevision === member.modRevision) return member;
    this.#members.set(member.id, member);
    this.#sorted = undefined;
    this.#changed = true;
    // A key deleted and created again in between (a new lease): it left and joined.
    if (previous && previous.createRevision !== member.createRevision) {
      this.emit('left', previous);
      this.emit('joined', member);
    } else if (previous) this.emit('updated', member, previous);
    else this.emit('joined', member);
    return member;
  }

  #remove(member: Member): void {
    this.#members.delete(member.id);
    this.#sorted = undefined;
    this.#changed = true;
    this.emit('left', member);
  }

  /** The mirror emits a batch's changes in one synchronous run: one `changed` after them. */
  #flushSoon(): void {
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    if (!this.#changed) return;
    this.#changed = false;
    this.emit('changed', this.members());
  }

  /** The mirror failed: list again with a new one, with backoff, until it works or the view closes. */
  #reopen(error: Error): void {
    if (this.#reopening || !this.open) return;
    this.#detach?.();
    this.#detach = undefined;
    this.emit('interrupted', error);
    const signal = this.#closed.signal;
    this.#reopening = (async () => {
      for (let pause = BACKOFF_FIRST_MS; !signal.aborted; ) {
        try {
          await sleep(pause, undefined, { signal });
          this.#adopt(await this.#client.mirror(this.prefix, { signal }));
          return;
        } catch (err) {
          if (signal.aborted) return;
          if (err instanceof ClientClosedError) {
            void this.close();
            return;
          }
          pause = Math.min(pause * 2, BACKOFF_MAX_MS);
        }
      }
    })().finally(() => {
      this.#reopening = undefined;
    });
  }
}
