/**
 * A stand-in for etcd's watch gateway, for protocol cases that a real etcd
 * cannot be made to send on demand (errors inside a 200 stream, unparseable
 * messages, a revision that goes back). It answers `GET /version` like etcd
 * 3.4 and hands each watch stream, a WebSocket upgrade of `/v3/watch` or a
 * `POST /v3/watch`, to a script. The WebSocket side implements just what the
 * client uses: the handshake, unfragmented text frames, ping and close.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Json } from '../client/helpers.js';

const b64 = (text: string | Uint8Array): string => Buffer.from(text).toString('base64');

/** An unbounded queue whose `next()` waits for the next item, up to a deadline. */
class Inbox<T> {
  #items: T[] = [];
  #waiters: Array<{ resolve: (item: T) => void; reject: (err: Error) => void }> = [];
  #closed = false;

  push(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(item);
    else this.#items.push(item);
  }

  /** The stream closed: pending and later waits fail once the queue is empty. */
  close(): void {
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(new Error('the stream closed'));
  }

  next(timeout = 10_000): Promise<T> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    if (this.#closed) return Promise.reject(new Error('the stream closed'));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`no message from the client within ${timeout} ms`));
      }, timeout);
      timer.unref();
      const waiter = {
        resolve: (value: T) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.#waiters.push(waiter);
    });
  }
}

/** One watch stream opened by the client against the scripted gateway. */
export interface ScriptedStream {
  readonly transport: 'websocket' | 'http';
  /** The next message the client sent (for HTTP, the request body is the only one). */
  next(timeout?: number): Promise<Json>;
  /** Sends a message as the gateway would (one WebSocket message, or one NDJSON line). */
  send(message: Json): void;
  /** Sends raw text as one message (WebSocket) or as raw body bytes (HTTP, no newline added). */
  sendRaw(text: string | Buffer): void;
  /** Ends the stream from the server side. */
  end(): void;
}

export interface ScriptedGateway {
  readonly url: string;
  /** Streams opened so far. */
  readonly streams: number;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function wsFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  let head: Buffer;
  if (length < 126) {
    head = Buffer.from([0x80 | opcode, length]);
  } else if (length < 65_536) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(length, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  }
  head[0] = 0x80 | opcode;
  return Buffer.concat([head, payload]);
}

/** Reads complete client frames (masked, unfragmented) from `buffer`; returns the rest. */
function readFrames(buffer: Buffer, onFrame: (opcode: number, payload: Buffer) => void): Buffer {
  let rest = buffer;
  for (;;) {
    if (rest.length < 2) return rest;
    const opcode = rest[0]! & 0x0f;
    const masked = (rest[1]! & 0x80) !== 0;
    let length = rest[1]! & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (rest.length < 4) return rest;
      length = rest.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (rest.length < 10) return rest;
      length = Number(rest.readBigUInt64BE(2));
      offset = 10;
    }
    const maskLength = masked ? 4 : 0;
    if (rest.length < offset + maskLength + length) return rest;
    const mask = rest.subarray(offset, offset + maskLength);
    const payload = Buffer.from(rest.subarray(offset + maskLength, offset + maskLength + length));
    if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
    rest = rest.subarray(offset + maskLength + length);
    onFrame(opcode, payload);
  }
}

/**
 * A loopback server that answers `GET /version` like etcd 3.4 and hands every
 * watch stream (WebSocket upgrade or `POST /v3/watch`) to `script`.
 */
export async function scriptedGateway(
  script: (stream: ScriptedStream, index: number) => void | Promise<void>,
): Promise<ScriptedGateway> {
  let streams = 0;
  const sockets = new Set<Duplex>();
  const run = (stream: ScriptedStream) => {
    const index = streams++;
    void Promise.resolve()
      .then(() => script(stream, index))
      .catch(() => stream.end());
  };
  const server = createHttpServer((req, res) => {
    if (req.method === 'GET' && req.url === '/version') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}');
      return;
    }
    if (req.method !== 'POST' || req.url !== '/v3/watch') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const inbox = new Inbox<Json>();
      inbox.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      res.on('close', () => inbox.close());
      run({
        transport: 'http',
        next: (timeout) => inbox.next(timeout),
        send: (message) => void res.write(`${JSON.stringify(message)}\n`),
        sendRaw: (text) => void res.write(text),
        end: () => void res.end(),
      });
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => undefined);
    const key = req.headers['sec-websocket-key'];
    if (req.url !== '/v3/watch' || typeof key !== 'string') {
      socket.destroy();
      return;
    }
    const accept = createHash('sha1')
      .update(key + WS_GUID)
      .digest('base64');
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    const inbox = new Inbox<Json>();
    socket.on('close', () => inbox.close());
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = readFrames(Buffer.concat([pending, chunk]), (opcode, payload) => {
        if (opcode === 1) inbox.push(JSON.parse(payload.toString('utf8')) as Json);
        else if (opcode === 8) socket.end(wsFrame(8, Buffer.alloc(0)));
        else if (opcode === 9) socket.write(wsFrame(10, payload));
      });
    });
    const send = (text: string | Buffer) => {
      if (!socket.writable) return;
      socket.write(wsFrame(1, Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8')));
    };
    run({
      transport: 'websocket',
      next: (timeout) => inbox.next(timeout),
      send: (message) => send(JSON.stringify(message)),
      sendRaw: send,
      end: () => socket.destroy(),
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port assigned');
  const port = address.port;
  const close = async () => {
    for (const s of sockets) s.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return {
    url: `http://127.0.0.1:${port}`,
    get streams() {
      return streams;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Messages of etcd's watch gateway, built the way etcd 3.4.23 sends them. */
export const wire = {
  header: (revision: bigint | number) => ({
    cluster_id: '1',
    member_id: '2',
    revision: String(revision),
    raft_term: '2',
  }),
  created: (id: string, revision: bigint | number): Json => ({
    result: { header: wire.header(revision), watch_id: id, created: true },
  }),
  put: (key: string, value: string, revision: bigint | number, version = 1): Json => ({
    kv: {
      key: b64(key),
      create_revision: String(revision),
      mod_revision: String(revision),
      version: String(version),
      value: b64(value),
    },
  }),
  del: (key: string, revision: bigint | number): Json => ({
    type: 'DELETE',
    kv: { key: b64(key), mod_revision: String(revision) },
  }),
  events: (id: string, revision: bigint | number, events: Json[], fragment = false): Json => ({
    result: {
      header: wire.header(revision),
      watch_id: id,
      events,
      ...(fragment ? { fragment: true } : {}),
    },
  }),
  progress: (id: string, revision: bigint | number): Json => ({
    result: { header: wire.header(revision), watch_id: id },
  }),
  canceled: (id: string, extra: Json): Json => ({
    result: {
      header: { cluster_id: '1', member_id: '2', raft_term: '2' },
      watch_id: id,
      canceled: true,
      ...extra,
    },
  }),
  /** An error inside a 200 stream, exactly as the gateway of etcd 3.4.23 writes it. */
  error: (
    grpcCode: number,
    message: string,
    httpCode = 503,
    httpStatus = 'Service Unavailable',
  ) => ({
    error: { grpc_code: grpcCode, http_code: httpCode, message, http_status: httpStatus },
  }),
};
