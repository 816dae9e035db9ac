/**
 * Helpers of the registry tests: a TCP proxy that can cut a consumer off
 * etcd, direct calls to etcd's JSON gateway, a child process holding a
 * registration, and small waits on service sets.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ServiceInstance, ServiceSet } from '@etcdkit/registry';

export interface TcpProxy {
  readonly url: string;
  /** Resets every live connection and, until `restore()`, every new one. */
  cut(): void;
  /** Sends new connections to another target from now on. */
  retarget(target: string): void;
  restore(): void;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A TCP proxy on 127.0.0.1 in front of `target` (an http:// URL); carries WebSockets too. */
export async function tcpProxy(target: string): Promise<TcpProxy> {
  let upstream = new URL(target);
  const sockets = new Set<Socket>();
  let cut = false;
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  };
  const server = createServer((client) => {
    track(client);
    if (cut) {
      client.resetAndDestroy();
      return;
    }
    const up = createConnection(Number(upstream.port), upstream.hostname);
    track(up);
    client.pipe(up).pipe(client);
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port assigned');
  const close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  return {
    url: `http://127.0.0.1:${address.port}`,
    cut() {
      cut = true;
      for (const s of sockets) s.resetAndDestroy();
    },
    restore() {
      cut = false;
    },
    retarget(next) {
      upstream = new URL(next);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

export type Json = Record<string, unknown>;

/** POSTs straight to etcd's JSON gateway, bypassing the client. */
export async function gateway(endpoint: string, path: string, body: Json): Promise<Json> {
  const res = await fetch(`${endpoint}/v3/${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const json = (await res.json()) as Json;
  if (res.status !== 200) throw new Error(`gateway ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** The stored value of a full key as parsed JSON, or undefined when the key does not exist. */
export async function storedJson(endpoint: string, key: string): Promise<Json | undefined> {
  const res = await gateway(endpoint, 'kv/range', { key: Buffer.from(key).toString('base64') });
  const kv = (res.kvs as Json[] | undefined)?.[0];
  if (!kv) return undefined;
  return JSON.parse(Buffer.from(String(kv.value ?? ''), 'base64').toString('utf8')) as Json;
}

/** Number of keys under a full prefix. */
export async function countKeys(endpoint: string, prefix: string): Promise<number> {
  const key = Buffer.from(prefix);
  const end = Buffer.from(prefix);
  end[end.length - 1]!++;
  const res = await gateway(endpoint, 'kv/range', {
    key: key.toString('base64'),
    range_end: end.toString('base64'),
    count_only: true,
  });
  return Number(res.count ?? 0);
}

/** Compacts the store up to its current revision; returns that revision. */
export async function compactNow(endpoint: string): Promise<bigint> {
  const status = await gateway(endpoint, 'kv/range', { key: Buffer.from('\0').toString('base64') });
  const revision = BigInt(String((status.header as Json).revision));
  await gateway(endpoint, 'kv/compaction', { revision: revision.toString(), physical: true });
  return revision;
}

/** IDs in a set, sorted. */
export const ids = (set: ServiceSet | readonly ServiceInstance[]): string[] =>
  ('instances' in set ? set.instances() : set).map((i) => i.id).sort();

/** A child process that registers one instance (see instance-process.ts). */
export interface InstanceProcess {
  readonly child: ChildProcess;
  /** The lease the child registered on. */
  readonly lease: bigint;
  /** Resolves when the child has exited. */
  readonly exited: Promise<unknown>;
}

export interface InstanceProcessConfig {
  endpoints: string[];
  keyPrefix: string;
  service: string;
  id: string;
  port: number;
  ttl: number;
}

/** Starts instance-process.js and waits until it reports its registration. */
export async function startInstanceProcess(
  config: InstanceProcessConfig,
): Promise<InstanceProcess> {
  const script = new URL('./instance-process.js', import.meta.url);
  const child = spawn(process.execPath, [script.pathname, JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    const message = JSON.parse(line) as { registered?: string };
    if (message.registered) return { child, lease: BigInt(message.registered), exited };
  }
  throw new Error('the instance process exited before registering');
}

let gcFunction: (() => void) | undefined;

/** Heap in use after a full garbage collection, in bytes. */
export function heapUsedAfterGc(): number {
  if (!gcFunction) {
    setFlagsFromString('--expose-gc');
    gcFunction = runInNewContext('gc') as () => void;
  }
  gcFunction();
  gcFunction();
  return process.memoryUsage().heapUsed;
}

/** Megabytes with one decimal. */
export const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
