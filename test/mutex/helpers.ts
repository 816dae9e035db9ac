/**
 * Helpers shared by the mutex tests: what etcd itself says about a lock queue
 * (its keys, and how many watchers wait on the member), and a record of
 * acquisitions that checks an exclusion rule at the moment each one happens.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Etcd } from '@etcdkit/client';
import { eventually } from '@etcdkit/harness';

export interface QueueKey {
  key: string;
  createRevision: bigint;
  lease: bigint;
}

/** The keys queued under `<name>/`, oldest first, as etcd stores them. */
export async function queueKeys(client: Etcd<unknown>, name: string): Promise<QueueKey[]> {
  const r = await client.readdir(`${name}/`, {
    sortTarget: 'createRevision',
    sortOrder: 'ascend',
    keysOnly: true,
  });
  return r.kvs.map((kv) => ({ key: kv.key, createRevision: kv.createRevision, lease: kv.lease }));
}

/** Waits until exactly these keys are queued under `<name>/`. */
export async function expectQueue(
  client: Etcd<unknown>,
  name: string,
  keys: string[],
  timeout = 10_000,
): Promise<void> {
  await eventually(
    async () => {
      assert.deepEqual(
        (await queueKeys(client, name)).map((k) => k.key),
        keys,
      );
    },
    { timeout },
  );
}

/** Waits until `count` keys are queued under `<name>/`. */
export async function expectQueueLength(
  client: Etcd<unknown>,
  name: string,
  count: number,
  timeout = 10_000,
): Promise<QueueKey[]> {
  return eventually(
    async () => {
      const keys = await queueKeys(client, name);
      assert.equal(keys.length, count, `queue of ${name}`);
      return keys;
    },
    { timeout, interval: 50 },
  );
}

/** etcd's own counters and gauges (Prometheus text on the client port), by name. */
export async function etcdMetrics(endpoint: string): Promise<Map<string, number>> {
  const res = await fetch(`${endpoint}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const metrics = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const match = /^([a-z_]+) (\S+)$/.exec(line);
    if (match) metrics.set(match[1]!, Number(match[2]));
  }
  return metrics;
}

/** Watchers open on the member: each lock waiter that decided to wait holds exactly one. */
export async function watcherCount(endpoint: string): Promise<number> {
  const value = (await etcdMetrics(endpoint)).get('etcd_debugging_mvcc_watcher_total');
  assert.ok(value !== undefined, 'etcd reports etcd_debugging_mvcc_watcher_total');
  return value;
}

/**
 * Waits until the member holds exactly `count` watchers. A contender that is
 * blocked waiting for its turn holds one, so this is how a test knows that its
 * contenders are waiting (and not merely on their way).
 */
export async function expectWatchers(endpoint: string, count: number, timeout = 15_000) {
  await eventually(async () => assert.equal(await watcherCount(endpoint), count), {
    timeout,
    interval: 50,
  });
}

/** A promise's state, readable at any moment. */
export interface Tracked<T> {
  readonly promise: Promise<T>;
  readonly settled: boolean;
  readonly value: T | undefined;
}

export function track<T>(promise: Promise<T>): Tracked<T> {
  let settled = false;
  let value: T | undefined;
  promise.then(
    (v) => {
      settled = true;
      value = v;
    },
    () => {
      settled = true;
    },
  );
  return {
    promise,
    get settled() {
      return settled;
    },
    get value() {
      return value;
    },
  };
}

/**
 * Who holds what, recorded in the test process. `acquired` runs the moment a
 * lock call resolves and records a violation if the rule (given the holders
 * at that moment) forbids it; `releasing` runs before the release is sent. So
 * a contender let in too early is caught whenever it happens.
 */
export class Holders<K extends string = string> {
  readonly order: string[] = [];
  readonly violations: string[] = [];
  readonly held = new Map<string, K>();
  #max = 0;
  readonly #allowed: (kind: K, held: K[]) => boolean;

  constructor(allowed: (kind: K, held: K[]) => boolean) {
    this.#allowed = allowed;
  }

  /** The largest number of simultaneous holders seen. */
  get max(): number {
    return this.#max;
  }

  acquired(id: string, kind: K): void {
    if (!this.#allowed(kind, [...this.held.values()])) {
      this.violations.push(`${id} (${kind}) got in while ${[...this.held.keys()].join(', ')} held`);
    }
    this.held.set(id, kind);
    this.order.push(id);
    this.#max = Math.max(this.#max, this.held.size);
  }

  releasing(id: string): void {
    this.held.delete(id);
  }
}

/** Asserts that `tokens` strictly increase. */
export function assertIncreasing(tokens: readonly bigint[], what = 'tokens'): void {
  for (let i = 1; i < tokens.length; i++) {
    assert.ok(
      tokens[i]! > tokens[i - 1]!,
      `${what} must strictly increase: #${i - 1} = ${tokens[i - 1]}, #${i} = ${tokens[i]}`,
    );
  }
}

/** Milliseconds since `start` (a `performance.now()` value), rounded for printing. */
export function since(start: number): number {
  return Math.round(performance.now() - start);
}

/**
 * A TCP pass-through on 127.0.0.1 in front of one etcd member, that can be cut
 * (listener closed, live connections destroyed) and opened again on the same port.
 */
export class TcpProxy {
  readonly #target: URL;
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  #port = 0;

  private constructor(target: string) {
    this.#target = new URL(target);
  }

  static async start(target: string): Promise<TcpProxy> {
    const proxy = new TcpProxy(target);
    await proxy.open();
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Accepts connections again (on the same port as before). */
  async open(): Promise<void> {
    if (this.#server) return;
    const server = createServer((socket) => {
      const upstream = connect(Number(this.#target.port), this.#target.hostname);
      for (const s of [socket, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          socket.destroy();
          upstream.destroy();
        });
      }
      socket.pipe(upstream).pipe(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', resolve);
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port assigned');
    this.#port = address.port;
    this.#server = server;
  }

  /** Refuses new connections and destroys the live ones. */
  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.cut();
  }
}
