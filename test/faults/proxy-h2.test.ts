// The fault proxy with HTTP/2 (h2c) connections, as the gRPC transport makes them, in front of a
// small node:http2 member that answers like gRPC (headers, data, then trailers with grpc-status).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect as connectH2,
  createServer,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
} from 'node:http2';
import { connect } from 'node:net';
import { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep, setImmediate as yieldTurn } from 'node:timers/promises';
import { grpcMethod } from '@etcdkit/client/internal/grpc-wire';
import {
  eventually,
  type FaultProxy,
  HpackDecoder,
  RPC_PATHS,
  requestNames,
  startProxy,
} from '@etcdkit/harness';

/** A member that records the path of each stream and answers it like a gRPC server. */
interface Member {
  url: string;
  paths: string[];
  close: () => Promise<void>;
}

async function startMember(): Promise<Member> {
  const paths: string[] = [];
  const sessions = new Set<Http2Session>();
  // A small header table: the clients' encoders must evict, which the proxy's decoder follows.
  const server: Http2Server = createServer({ settings: { headerTableSize: 256 } });
  server.on('session', (session) => {
    sessions.add(session);
    session.on('error', () => undefined);
    session.on('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const path = String(headers[':path']);
    paths.push(path);
    if (path.startsWith('/etcdserverpb.Watch/')) {
      // A long-lived stream: it echoes each message as it comes.
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.on('data', (chunk: Buffer) => stream.write(chunk));
      return;
    }
    const body: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => body.push(chunk));
    stream.on('end', () => {
      if (path === '/etcdserverpb.KV/Compact') {
        // Trailers-only: the status in the one HEADERS frame, which ends the stream.
        stream.respond({ ':status': 200, 'grpc-status': '9' }, { endStream: true });
        return;
      }
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc' },
        { waitForTrailers: true },
      );
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.concat(body));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port assigned');
  return {
    url: `http://127.0.0.1:${address.port}`,
    paths,
    close: async () => {
      for (const session of sessions) session.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

interface Answer {
  headers: IncomingHttpHeaders | undefined;
  body: string;
  trailers: IncomingHttpHeaders | undefined;
  /** RST_STREAM code the stream closed with (0 when it ended normally). */
  code: number;
}

/** Sends one request on `session` and settles with everything that came back once the stream closes. */
function call(
  session: ClientHttp2Session,
  path: string,
  body = 'hello',
  extra: Record<string, string> = {},
): Promise<Answer> {
  const stream = session.request({ ':method': 'POST', ':path': path, ...extra });
  stream.end(body);
  return answer(stream);
}

function answer(stream: ClientHttp2Stream): Promise<Answer> {
  const got: Answer = { headers: undefined, body: '', trailers: undefined, code: 0 };
  stream.on('response', (headers) => {
    got.headers = headers;
  });
  stream.on('trailers', (trailers) => {
    got.trailers = trailers;
  });
  stream.on('data', (chunk: Buffer) => {
    got.body += chunk.toString('latin1');
  });
  stream.on('error', () => undefined);
  return new Promise((resolve) => {
    stream.on('close', () => resolve({ ...got, code: stream.rstCode ?? 0 }));
  });
}

function open(proxy: FaultProxy): ClientHttp2Session {
  const session = connectH2(proxy.url);
  session.on('error', () => undefined);
  return session;
}

/**
 * A session whose bytes reach the proxy a few at a time, so frames and the
 * preface itself arrive split across many chunks.
 */
function openTrickling(proxy: FaultProxy): ClientHttp2Session {
  const session = connectH2(proxy.url, {
    createConnection: () => {
      const socket = connect({ host: '127.0.0.1', port: proxy.port });
      socket.setNoDelay(true);
      const duplex = new Duplex({
        write(chunk: Buffer, _encoding, done) {
          void (async () => {
            for (let i = 0; i < chunk.length; i += 3) {
              socket.write(chunk.subarray(i, i + 3));
              await yieldTurn();
            }
            done();
          })();
        },
        read() {},
        final(done) {
          socket.end();
          done();
        },
        destroy(err, done) {
          socket.destroy();
          done(err);
        },
      });
      socket.on('data', (chunk: Buffer) => duplex.push(chunk));
      socket.on('end', () => duplex.push(null));
      socket.on('error', (err) => duplex.destroy(err));
      return duplex;
    },
  });
  session.on('error', () => undefined);
  return session;
}

let member: Member;
before(async () => {
  member = await startMember();
});
after(async () => {
  await member.close();
});

const hex = (text: string) => Buffer.from(text.replace(/\s/g, ''), 'hex');

describe('fault proxy with HTTP/2', () => {
  test('the header decoder reads the examples of RFC 7541 (Huffman, table eviction)', () => {
    const requests = new HpackDecoder();
    assert.deepEqual(requests.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff')), [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    assert.deepEqual(requests.decode(hex('8286 84be 5886 a8eb 1064 9cbf')).at(-1), [
      'cache-control',
      'no-cache',
    ]);
    assert.deepEqual(
      requests.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')),
      [
        [':method', 'GET'],
        [':scheme', 'https'],
        [':path', '/index.html'],
        [':authority', 'www.example.com'],
        ['custom-key', 'custom-value'],
      ],
    );
    // Responses with a 256-octet table: each one evicts entries the next refers around.
    const responses = new HpackDecoder();
    assert.deepEqual(responses.decode(hex('3fe101')), []);
    const date = 'Mon, 21 Oct 2013 20:13:21 GMT';
    const location: [string, string] = ['location', 'https://www.example.com'];
    assert.deepEqual(
      responses.decode(
        hex(
          '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 ' +
            '2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
        ),
      ),
      [[':status', '302'], ['cache-control', 'private'], ['date', date], location],
    );
    assert.deepEqual(responses.decode(hex('4883 640e ffc1 c0bf')), [
      [':status', '307'],
      ['cache-control', 'private'],
      ['date', date],
      location,
    ]);
    assert.deepEqual(
      responses.decode(
        hex(
          '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab ' +
            '77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f ' +
            '9587 3160 65c0 03ed 4ee5 b106 3d50 07',
        ),
      ),
      [
        [':status', '200'],
        ['cache-control', 'private'],
        ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'],
        location,
        ['content-encoding', 'gzip'],
        ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
      ],
    );
  });

  test('every gateway path of the table names the gRPC method the client calls', () => {
    for (const [gateway, grpc] of RPC_PATHS) {
      assert.equal(grpcMethod(gateway.slice('/v3/'.length)).path, grpc, gateway);
      assert.deepEqual(requestNames(grpc), [grpc, gateway]);
      assert.deepEqual(requestNames(gateway), [gateway, grpc]);
    }
    assert.deepEqual(requestNames('/v3beta/kv/range?x=1'), [
      '/v3beta/kv/range?x=1',
      RPC_PATHS[0]![1],
    ]);
    assert.deepEqual(requestNames('/health'), ['/health']);
  });

  test('streams pass with their trailers; each counts under its gRPC and its gateway path', async () => {
    await using proxy = await startProxy(member.url);
    const session = open(proxy);
    const range = await call(session, '/etcdserverpb.KV/Range', 'r1');
    assert.equal(range.headers?.[':status'], 200);
    assert.equal(range.body, 'r1');
    assert.equal(range.trailers?.['grpc-status'], '0', 'trailers pass');
    const compact = await call(session, '/etcdserverpb.KV/Compact');
    assert.equal(compact.headers?.['grpc-status'], '9', 'a trailers-only answer passes');
    assert.equal(compact.trailers, undefined);
    // Enough requests with changing headers that the client's header table keeps evicting.
    for (let i = 0; i < 60; i++) {
      const path = i % 2 === 0 ? '/etcdserverpb.KV/Put' : '/etcdserverpb.Lease/LeaseGrant';
      const got = await call(session, path, `m${i}`, { 'x-n': `value-${i}-${'z'.repeat(i * 3)}` });
      assert.equal(got.body, `m${i}`);
    }
    assert.equal(proxy.requests('/v3/kv/range'), 1);
    assert.equal(proxy.requests('/etcdserverpb.KV/Range'), 1);
    assert.equal(proxy.requests('/v3/kv/put'), 30);
    assert.equal(proxy.requests('/v3/lease/grant'), 30);
    assert.equal(proxy.requests(/^\/v3\/kv\//), 32);
    assert.equal(proxy.requests(), 62);
    assert.equal(proxy.connections, 1);
    session.close();
    await eventually(() => assert.equal(proxy.live, 0));
  });

  test('paths are read whatever their bytes, header blocks split into frames and frames into chunks', async () => {
    await using proxy = await startProxy(member.url);
    let printable = '';
    for (let c = 0x21; c < 0x7f; c++) printable += String.fromCharCode(c);
    const odd = `/odd/${printable}`;
    const session = open(proxy);
    // A header block larger than a frame goes out as HEADERS and CONTINUATION frames.
    await call(session, '/etcdserverpb.KV/Txn', 'big', { 'x-big': 'b'.repeat(40_000) });
    await call(session, odd);
    await call(session, '/etcdserverpb.KV/Txn');
    assert.equal(proxy.requests('/v3/kv/txn'), 2);
    assert.equal(proxy.requests(odd), 1);
    session.close();
    const trickling = openTrickling(proxy);
    for (let i = 0; i < 5; i++) {
      const got = await call(trickling, '/etcdserverpb.KV/DeleteRange', `d${i}`, { 'x-i': `${i}` });
      assert.equal(got.trailers?.['grpc-status'], '0');
    }
    assert.equal(proxy.requests('/v3/kv/deleterange'), 5);
    trickling.close();
  });

  test('HTTP/1.1 request lines count under their gRPC path too', async () => {
    await using proxy = await startProxy(member.url);
    const socket = connect({ host: '127.0.0.1', port: proxy.port });
    socket.on('error', () => undefined);
    socket.write('POST /v3/kv/put HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}');
    await eventually(() => assert.equal(proxy.requests('/etcdserverpb.KV/Put'), 1));
    socket.destroy();
  });

  test('dropResponses closes the connection at the first answer frame of a matching stream', async () => {
    await using proxy = await startProxy(member.url);
    const session = open(proxy);
    const watch = session.request({ ':method': 'POST', ':path': '/etcdserverpb.Watch/Watch' });
    const watched = answer(watch);
    watch.write('w1');
    await eventually(() => assert.ok(member.paths.includes('/etcdserverpb.Watch/Watch')));
    await proxy.dropResponses({ match: '/v3/kv/deleterange', times: 1 });
    const range = await call(session, '/etcdserverpb.KV/Range', 'still answered');
    assert.equal(range.body, 'still answered', 'other paths pass');
    const before = member.paths.length;
    const lost = await call(session, '/etcdserverpb.KV/DeleteRange', 'lost');
    assert.equal(lost.headers, undefined, 'no frame of the answer came back');
    assert.equal(member.paths[before], '/etcdserverpb.KV/DeleteRange', 'the request arrived');
    const w = await watched;
    assert.equal(w.body, 'w1', 'the watch got its answer before the drop');
    assert.equal(w.trailers, undefined, 'and ended with the connection');
    await eventually(() => assert.ok(session.destroyed || session.closed));
    assert.equal(proxy.dropped, 1);
    // After `times` drops, the matching path passes again.
    const again = open(proxy);
    const kept = await call(again, '/etcdserverpb.KV/DeleteRange', 'kept');
    assert.equal(kept.body, 'kept');
    assert.equal(proxy.dropped, 1);
    assert.equal(proxy.requests('/v3/kv/deleterange'), 2);
    again.close();
  });

  test('dropResponses with no match drops the first answer of any stream, not the settings', async () => {
    await using proxy = await startProxy(member.url);
    await proxy.dropResponses({ times: 1 });
    const session = open(proxy);
    await once(session, 'remoteSettings');
    const lost = await call(session, '/etcdserverpb.KV/Put');
    assert.equal(lost.headers, undefined);
    assert.equal(proxy.dropped, 1);
  });

  test('requests into a blackhole are counted but reach nothing; the connection closes after', async () => {
    await using proxy = await startProxy(member.url);
    const session = open(proxy);
    await call(session, '/etcdserverpb.KV/Range');
    await proxy.blackhole();
    const before = member.paths.length;
    const pending = call(session, '/etcdserverpb.KV/Put', 'swallowed');
    await eventually(() => assert.equal(proxy.requests('/v3/kv/put'), 1));
    const fresh = open(proxy);
    const pendingFresh = call(fresh, '/etcdserverpb.Auth/Authenticate');
    await eventually(() => assert.equal(proxy.requests('/v3/auth/authenticate'), 1));
    await sleep(200); // nothing can be awaited: the point is that nothing arrives
    assert.equal(member.paths.length, before, 'the member received nothing');
    await proxy.pass();
    assert.equal((await pending).headers, undefined);
    assert.equal((await pendingFresh).headers, undefined);
    const after = open(proxy);
    assert.equal((await call(after, '/etcdserverpb.KV/Range', 'back')).body, 'back');
    after.close();
  });

  test("delay 'frames': the member's settings pass at once, answers wait", async () => {
    await using proxy = await startProxy(member.url);
    await proxy.delay(300, 'frames');
    const session = open(proxy);
    // Timed from the connect: a first connection in a process can take long to set up.
    await once(session, 'connect');
    const start = performance.now();
    await once(session, 'remoteSettings');
    const settled = performance.now() - start;
    assert.ok(settled < 200, `the settings were not held (${settled} ms)`);
    const asked = performance.now();
    const got = await call(session, '/etcdserverpb.KV/Range', 'late');
    assert.equal(got.body, 'late');
    assert.ok(performance.now() - asked >= 295, 'the answer waited');
    await proxy.pass();
    session.close();
  });

  test('cut, reset and refuse end HTTP/2 connections like any other', async () => {
    await using proxy = await startProxy(member.url);
    const a = open(proxy);
    await call(a, '/etcdserverpb.KV/Range');
    proxy.cut();
    await eventually(() => assert.ok(a.destroyed));
    const b = open(proxy);
    await call(b, '/etcdserverpb.KV/Range');
    await proxy.reset();
    await eventually(() => assert.ok(b.destroyed));
    await proxy.refuse();
    await proxy.pass();
    const c = open(proxy);
    assert.equal((await call(c, '/etcdserverpb.KV/Range', 'c')).body, 'c');
    c.close();
  });
});
