/**
 * Helpers shared by the client's integration tests: loopback servers that
 * misbehave on purpose (never answer, reset, delay), a counting proxy in front
 * of etcd, and direct calls to etcd's JSON gateway for checking what is stored.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { type Compare, type Etcd, Op } from '@etcdkit/client';
import { freePorts } from '@etcdkit/harness';

export const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

export const concatBytes = (...parts: Uint8Array[]): Uint8Array =>
  Uint8Array.from(Buffer.concat(parts));

export const b64 = (key: string | Uint8Array): string => Buffer.from(key).toString('base64');

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port assigned');
  return address.port;
}

export interface TestServer {
  readonly url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Listens on 127.0.0.1, counts connections, and destroys the open ones on close. */
async function serve(server: Server): Promise<TestServer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  const port = await listen(server);
  const close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A TCP server on 127.0.0.1 that hands each accepted connection to `onSocket`. */
function tcpServer(onSocket: (socket: Socket) => void): Promise<TestServer> {
  return serve(createServer(onSocket));
}

/** Accepts every connection and never answers: a hung member. */
export function silentServer(): Promise<TestServer> {
  return tcpServer(() => undefined);
}

/** Accepts every connection, reads the start of the request, then resets the connection. */
export function resettingServer(): Promise<TestServer> {
  return tcpServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
}

/** A URL on 127.0.0.1 where nothing listens (connections are refused). */
export async function refusedUrl(): Promise<string> {
  const [port] = await freePorts(1);
  return `http://127.0.0.1:${port}`;
}

/**
 * An HTTP server on 127.0.0.1 that answers every request with `status` and an
 * HTML page, as a proxy does. `calls` counts the gateway calls (not health probes).
 */
export async function errorPageServer(status: number): Promise<TestServer & { calls: number }> {
  let calls = 0;
  const server = createHttpServer((req, res) => {
    if (req.url?.startsWith('/v3/')) calls++;
    req.resume();
    res.writeHead(status, { 'content-type': 'text/html' });
    res.end(`<html><body><h1>${status} ${STATUS_CODES[status]}</h1><hr>nginx</body></html>`);
  });
  const served = await serve(server);
  return Object.defineProperty(served, 'calls', { get: () => calls }) as TestServer & {
    calls: number;
  };
}

export interface Proxy {
  readonly url: string;
  /** Paths of the requests forwarded so far, in order. */
  readonly paths: string[];
  /** Client connections accepted so far. */
  readonly connections: number;
  /** How many requests went to a path ending with `suffix`. */
  count(suffix: string): number;
  /** Requests whose path ends with `suffix` wait until `release()`. */
  hold(suffix: string): void;
  release(): void;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** An HTTP proxy on 127.0.0.1 in front of `target` that records and can hold requests. */
export async function proxy(target: string): Promise<Proxy> {
  const upstream = new URL(target);
  const paths: string[] = [];
  let held: string | undefined;
  let waiting: Array<() => void> = [];
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const up = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  };
  const server = createHttpServer((req, res) => {
    const path = req.url ?? '';
    paths.push(path);
    if (held !== undefined && path.endsWith(held)) waiting.push(() => forward(req, res));
    else forward(req, res);
  });
  const sockets = new Set<Socket>();
  let connections = 0;
  server.on('connection', (socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
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
    paths,
    get connections() {
      return connections;
    },
    count: (suffix) => paths.filter((p) => p.endsWith(suffix)).length,
    hold(suffix) {
      held = suffix;
    },
    release() {
      held = undefined;
      const go = waiting;
      waiting = [];
      for (const f of go) f();
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

/** The raw stored pair for a full key (no client involved), or undefined. */
export async function rawGet(
  endpoint: string,
  key: string | Uint8Array,
): Promise<Json | undefined> {
  const res = await gateway(endpoint, 'kv/range', { key: b64(key) });
  const kvs = res.kvs as Json[] | undefined;
  return kvs?.[0];
}

/** Compacts the store up to `revision`. */
export async function compact(endpoint: string, revision: bigint): Promise<void> {
  await gateway(endpoint, 'kv/compaction', { revision: revision.toString() });
}

/**
 * Finds etcdctl through ETCDCTL_BIN or PATH. (etcdctl 3.4 knows `version` but
 * not `--version`, so it is probed with the former.)
 */
function etcdctl(): string {
  const fromEnv = process.env.ETCDCTL_BIN;
  if (fromEnv) return fromEnv;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'etcdctl');
    if (spawnSync(candidate, ['version'], { stdio: 'ignore' }).status === 0) return candidate;
  }
  throw new Error('etcdctl was not found: put it on PATH or set ETCDCTL_BIN');
}

/** Lease IDs as etcd lists them, parsed from `etcdctl lease list` (hex). */
export function etcdctlLeases(endpoint: string): bigint[] {
  const r = spawnSync(etcdctl(), [`--endpoints=${endpoint}`, 'lease', 'list'], {
    env: { ...process.env, ETCDCTL_API: '3' },
    encoding: 'utf8',
    timeout: 10_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .split('\n')
    .slice(1)
    .map((line) => line.trim())
    .filter((line) => /^[0-9a-f]+$/.test(line))
    .map((hex) => BigInt(`0x${hex}`));
}

/**
 * Calls `fn` and asserts that it did not throw synchronously: an async API
 * reports every failure through the promise it returns.
 */
export function noSyncThrow<T>(fn: () => Promise<T>): Promise<T> {
  let promise: Promise<T> | undefined;
  assert.doesNotThrow(() => {
    promise = fn();
  });
  assert.ok(promise instanceof Promise, 'an async call returns a promise');
  return promise;
}

/** Writes `count` keys in transactions of up to `batch` puts, `parallel` at a time. */
export async function writeMany(
  client: Etcd<unknown>,
  count: number,
  entry: (i: number) => [key: string, value: unknown],
  batch = 128,
  parallel = 6,
): Promise<bigint> {
  let next = 0;
  let revision = 0n;
  const worker = async () => {
    while (next < count) {
      const start = next;
      const end = Math.min(count, start + batch);
      next = end;
      const ops: Op[] = [];
      for (let i = start; i < end; i++) {
        const [key, value] = entry(i);
        ops.push(Op.put(key, value));
      }
      const r = await client
        .txn()
        .success(...ops)
        .commit();
      if (r.revision > revision) revision = r.revision;
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return revision;
}

/** Whether a transaction with only these comparisons succeeds. */
export async function holds(client: Etcd<unknown>, ...compare: Compare[]): Promise<boolean> {
  return (
    await client
      .txn()
      .if(...compare)
      .commit()
  ).succeeded;
}
