// The fault proxy on its own, in front of a tiny echo server on 127.0.0.1: each mode does what it says.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually, type FaultProxy, startProxy } from '@etcdkit/harness';

/** An echo server that also remembers every byte it received. */
interface Echo {
  url: string;
  received: () => string;
  close: () => Promise<void>;
}

async function startEcho(): Promise<Echo> {
  let received = '';
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      socket.write(chunk);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port assigned');
  return {
    url: `http://127.0.0.1:${address.port}`,
    received: () => received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A client connection that collects what it reads and how it ended. */
interface Conn {
  socket: Socket;
  data: () => string;
  /** Settles with the error code that ended the connection, or 'closed'. */
  ended: Promise<string>;
}

async function open(proxy: FaultProxy): Promise<Conn> {
  const socket = connect({ host: '127.0.0.1', port: proxy.port });
  let data = '';
  socket.on('data', (chunk: Buffer) => {
    data += chunk.toString('latin1');
  });
  const ended = new Promise<string>((resolve) => {
    let code = 'closed';
    socket.on('error', (err: NodeJS.ErrnoException) => {
      code = err.code ?? err.message;
    });
    socket.on('close', () => resolve(code));
  });
  await Promise.race([once(socket, 'connect'), ended.then((code) => assert.fail(code))]);
  return { socket, data: () => data, ended };
}

/** Connects and reports how the attempt ended: 'connected' or the error code. */
async function tryConnect(proxy: FaultProxy): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port: proxy.port });
  try {
    return await new Promise<string>((resolve) => {
      socket.once('connect', () => resolve('connected'));
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
  } finally {
    socket.destroy();
  }
}

async function echoes(proxy: FaultProxy, text: string): Promise<void> {
  const conn = await open(proxy);
  conn.socket.write(text);
  await eventually(() => assert.equal(conn.data(), text));
  conn.socket.destroy();
}

let echo: Echo;
before(async () => {
  echo = await startEcho();
});
after(async () => {
  await echo.close();
});

describe('fault proxy', () => {
  test('pass forwards both ways and counts connections', async () => {
    await using proxy = await startProxy(echo.url);
    assert.match(proxy.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(proxy.mode, 'pass');
    await echoes(proxy, 'hello');
    await echoes(proxy, 'again');
    assert.equal(proxy.connections, 2);
    await eventually(() => assert.equal(proxy.live, 0));
  });

  test('delay forwards each chunk after the delay, in order', async () => {
    await using proxy = await startProxy(echo.url);
    const conn = await open(proxy);
    await proxy.delay(150);
    const start = performance.now();
    for (const part of ['a', 'b', 'c', 'd']) conn.socket.write(part);
    await eventually(() => assert.equal(conn.data(), 'abcd'));
    // 150 ms on the way there and 150 ms on the way back; delays only ever lengthen.
    assert.ok(performance.now() - start >= 295, 'both directions were delayed');
    await proxy.pass();
    conn.socket.write('e');
    await eventually(() => assert.equal(conn.data(), 'abcde'));
    conn.socket.destroy();
  });

  test('a stream stays in order while delays change and end under a busy event loop', async () => {
    await using proxy = await startProxy(echo.url);
    const conn = await open(proxy);
    let sent = '';
    for (let i = 0; i < 60; i++) {
      if (i % 3 === 0) await proxy.delay(5 + (i % 7) * 10);
      else if (i % 3 === 2) await proxy.pass();
      const part = `<${i}>`;
      conn.socket.write(part);
      sent += part;
      // Keep the loop busy now and then, so timers set in one turn fire in a later one.
      const until = performance.now() + (i % 4) * 4;
      while (performance.now() < until);
      await sleep(i % 5);
    }
    await proxy.pass();
    await eventually(() => assert.equal(conn.data().length, sent.length), { timeout: 20_000 });
    assert.equal(echo.received().slice(-sent.length), sent, 'the member got every byte in order');
    assert.equal(conn.data(), sent, 'the client got every byte back in order');
    conn.socket.destroy();
  });

  test('blackhole accepts and swallows both ways; connections that lost bytes close when it ends', async () => {
    await using proxy = await startProxy(echo.url);
    const live = await open(proxy);
    live.socket.write('before ');
    await eventually(() => assert.equal(live.data(), 'before '));
    await proxy.blackhole();
    live.socket.write('swallowed-live');
    const fresh = await open(proxy);
    fresh.socket.write('swallowed-new');
    await sleep(200); // nothing can be awaited: the point is that nothing arrives
    assert.equal(live.data(), 'before ');
    assert.equal(fresh.data(), '');
    assert.ok(!echo.received().includes('swallowed'), 'the server received nothing');
    assert.equal(live.socket.destroyed, false, 'connections stay open');
    await proxy.pass();
    assert.equal(await live.ended, 'closed');
    assert.equal(await fresh.ended, 'closed');
    await echoes(proxy, 'after');
  });

  test('reset destroys live connections with RST and resets new ones', async () => {
    await using proxy = await startProxy(echo.url);
    const live = await open(proxy);
    await proxy.reset();
    assert.equal(await live.ended, 'ECONNRESET');
    const fresh = connect({ host: '127.0.0.1', port: proxy.port });
    const [err] = (await once(fresh, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNRESET');
    await proxy.pass();
    await echoes(proxy, 'back');
  });

  test('refuse stops listening; pass listens again on the same port', async () => {
    await using proxy = await startProxy(echo.url);
    const live = await open(proxy);
    const port = proxy.port;
    await proxy.refuse();
    assert.equal(await tryConnect(proxy), 'ECONNREFUSED');
    assert.notEqual(await live.ended, undefined, 'live connections end');
    await proxy.pass();
    assert.equal(proxy.port, port);
    await echoes(proxy, 'listening again');
  });

  test('cut closes live connections once and keeps accepting', async () => {
    await using proxy = await startProxy(echo.url);
    const a = await open(proxy);
    const b = await open(proxy);
    await eventually(() => assert.equal(proxy.live, 2));
    proxy.cut();
    assert.equal(await a.ended, 'closed');
    assert.equal(await b.ended, 'closed');
    assert.equal(proxy.mode, 'pass');
    await echoes(proxy, 'still open');
  });

  test('dropResponses forwards the request, then closes before the answer returns', async () => {
    await using proxy = await startProxy(echo.url);
    await proxy.dropResponses({ match: '/v3/kv/put', times: 1 });
    const request = 'POST /v3/kv/put HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}';
    const first = await open(proxy);
    first.socket.write(request);
    assert.equal(await first.ended, 'closed');
    assert.equal(first.data(), '', 'no byte of the answer came back');
    await eventually(() => assert.ok(echo.received().includes(request), 'the request arrived'));
    assert.equal(proxy.dropped, 1);
    // Other paths pass, and after `times` drops so does the matching one.
    const other = 'POST /v3/kv/range HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}';
    await echoes(proxy, other);
    await echoes(proxy, request);
    assert.equal(proxy.requests('/v3/kv/put'), 2);
    assert.equal(proxy.requests('/v3/kv/range'), 1);
    assert.equal(proxy.requests(), 3);
    assert.equal(proxy.dropped, 1);
  });

  test('close ends every connection and the port refuses afterwards', async () => {
    const proxy = await startProxy(echo.url);
    const conn = await open(proxy);
    await proxy.close();
    await conn.ended;
    assert.equal(await tryConnect(proxy), 'ECONNREFUSED');
    await proxy.close(); // idempotent
    await assert.rejects(proxy.pass(), /closed/);
  });
});
