// The watch protocol against a scripted gateway, for what a real etcd cannot be made to send
// on demand: errors inside a 200 stream, unparseable messages, cancellations with a reason,
// fragments cut by a disconnect, a stream that stops answering, a revision that goes back.
// Both transports: the shared WebSocket and the NDJSON POST fallback.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createClient,
  EtcdError,
  PermissionDeniedError,
  ProtocolError,
  RevisionRegressedError,
  UnavailableError,
  WatchCanceledError,
  WatchCompactedError,
} from '@etcdkit/client';
import { eventually } from '@etcdkit/harness';
import type { Json } from '../client/helpers.js';
import { silentServer } from '../client/helpers.js';
import { type ScriptedStream, scriptedGateway, wire } from './scripted-gateway.js';
import { Recorder } from './support.js';

type Transport = 'websocket' | 'http';

/** The create request of a client message, checked. */
function createOf(message: Json): Json {
  const create = message.create_request as Json | undefined;
  assert.ok(create, `expected a create request, got ${JSON.stringify(message)}`);
  return create;
}

/** A promise with its resolver, for steps of a script that wait for the test. */
function gate(): { open: () => void; opened: Promise<void> } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

function client(url: string, transport: Transport, watch: Json = {}) {
  return createClient({
    // Scripted gateways speak the gateway's watch protocol: the client must too.
    transport: 'gateway',
    endpoints: url,
    codec: 'string',
    timeout: 2_000,
    watch: { transport, ...watch },
  });
}

for (const transport of ['websocket', 'http'] as const) {
  describe(`${transport}: errors inside a 200 stream`, () => {
    test('an error message is typed, reported as a disconnect, and the watch resumes after the last delivered revision', async () => {
      const creates: Json[] = [];
      const listening = gate();
      await using gateway = await scriptedGateway(async (stream, index) => {
        const create = createOf(await stream.next());
        creates.push(create);
        const id = String(create.watch_id);
        if (index === 0) {
          stream.send(wire.created(id, 10));
          await listening.opened;
          stream.send(wire.events(id, 11, [wire.put('a', '1', 11)]));
          stream.send(wire.events(id, 12, [wire.put('b', '2', 12)]));
          stream.send(wire.error(14, 'etcdserver: no leader'));
        } else {
          stream.send(wire.created(id, 12));
          // A member may replay what was already delivered: the client drops it.
          stream.send(wire.events(id, 12, [wire.put('b', '2', 12)]));
          stream.send(wire.events(id, 13, [wire.put('c', '3', 13)]));
        }
      });
      await using etcd = client(gateway.url, transport);
      await using watcher = await etcd.watchdir('');
      const disconnects: Error[] = [];
      const resumed: bigint[] = [];
      watcher.on('disconnected', (e) => disconnects.push(e));
      watcher.on('resumed', (r) => resumed.push(r));
      const rec = new Recorder(watcher);
      listening.open();
      await rec.waitFor(3);
      assert.deepEqual(rec.lines(), ['11 put a 1', '12 put b 2', '13 put c 3']);
      const [first] = disconnects;
      assert.ok(first instanceof UnavailableError, String(first));
      assert.equal(first.grpcCode, 14);
      assert.match(first.message, /no leader/);
      assert.deepEqual(resumed, [12n]);
      assert.equal(creates[0]!.start_revision, undefined, 'the first watch starts at "now"');
      assert.equal(creates[1]!.start_revision, '13', 'resumed at last delivered + 1');
      assert.equal(creates[1]!.watch_id, creates[0]!.watch_id, 'the watch ID is kept');
      assert.equal(watcher.ended, false);
    });

    test('etcd cancelling a watch with a reason ends it with WatchCanceledError', async () => {
      await using gateway = await scriptedGateway(async (stream) => {
        const id = String(createOf(await stream.next()).watch_id);
        stream.send(wire.created(id, 5));
        stream.send(
          wire.canceled(id, {
            cancel_reason:
              'rpc error: code = PermissionDenied desc = etcdserver: permission denied',
          }),
        );
      });
      await using etcd = client(gateway.url, transport);
      const watcher = await etcd.watch('k');
      const err = await new Recorder(watcher).ended;
      assert.ok(err instanceof WatchCanceledError, String(err));
      assert.ok(err instanceof EtcdError);
      assert.equal(err.code, 'ETCDKIT_WATCH_CANCELED');
      assert.match(err.message, /permission denied/);
      assert.equal(watcher.ended, true);
    });

    test('a compaction cancel is a WatchCompactedError with its revision, also as events', async () => {
      const listening = gate();
      await using gateway = await scriptedGateway(async (stream) => {
        const id = String(createOf(await stream.next()).watch_id);
        stream.send(wire.created(id, 50));
        await listening.opened;
        stream.send(wire.canceled(id, { compact_revision: '42' }));
      });
      await using etcd = client(gateway.url, transport);
      const watcher = await etcd.watch('k', { startRevision: 7n });
      const compacted: WatchCompactedError[] = [];
      const errors: Error[] = [];
      watcher.on('compacted', (e) => compacted.push(e));
      watcher.on('error', (e) => errors.push(e));
      const ended = new Recorder(watcher).ended;
      listening.open();
      const err = await ended;
      assert.ok(err instanceof WatchCompactedError, String(err));
      assert.equal(err.compactRevision, 42n);
      assert.deepEqual(compacted, [err]);
      assert.deepEqual(errors, [err]);
    });

    test('a server-side end of the stream is a disconnect: the watch is re-created', async () => {
      const creates: Json[] = [];
      await using gateway = await scriptedGateway(async (stream, index) => {
        const create = createOf(await stream.next());
        creates.push(create);
        const id = String(create.watch_id);
        stream.send(wire.created(id, 20 + index));
        stream.send(wire.events(id, 21 + index, [wire.put('k', `v${index}`, 21 + index)]));
        if (index === 0) stream.end();
      });
      await using etcd = client(gateway.url, transport);
      await using watcher = await etcd.watch('k');
      const rec = new Recorder(watcher);
      await rec.waitFor(2);
      assert.deepEqual(rec.lines(), ['21 put k v0', '22 put k v1']);
      assert.equal(creates[1]!.start_revision, '22');
    });
  });
}

describe('websocket: protocol', () => {
  test('a message that is not JSON is a ProtocolError; the stream is re-established', async () => {
    const creates: Json[] = [];
    const listening = gate();
    await using gateway = await scriptedGateway(async (stream, index) => {
      const create = createOf(await stream.next());
      creates.push(create);
      const id = String(create.watch_id);
      stream.send(wire.created(id, 3 + index));
      if (index === 0) {
        await listening.opened;
        stream.send(wire.events(id, 4, [wire.put('k', 'a', 4)]));
        stream.sendRaw('<html>502 Bad Gateway</html>');
      } else {
        stream.send(wire.events(id, 5, [wire.put('k', 'b', 5)]));
      }
    });
    await using etcd = client(gateway.url, 'websocket');
    await using watcher = await etcd.watch('k');
    const disconnects: Error[] = [];
    watcher.on('disconnected', (e) => disconnects.push(e));
    const rec = new Recorder(watcher);
    listening.open();
    await rec.waitFor(2);
    assert.deepEqual(rec.lines(), ['4 put k a', '5 put k b']);
    assert.ok(
      disconnects[0] instanceof ProtocolError,
      `expected a ProtocolError, got ${disconnects[0]?.name}: ${disconnects[0]?.message}`,
    );
    assert.equal(creates[1]!.start_revision, '5');
  });

  test('fragments are joined into one batch; fragments cut by a disconnect are dropped and re-sent whole', async () => {
    const creates: Json[] = [];
    await using gateway = await scriptedGateway(async (stream, index) => {
      const create = createOf(await stream.next());
      creates.push(create);
      const id = String(create.watch_id);
      const events = [wire.put('a', '1', 8), wire.put('b', '2', 8), wire.put('c', '3', 8)];
      if (index === 0) {
        stream.send(wire.created(id, 7));
        stream.send(wire.events(id, 8, events.slice(0, 1), true));
        stream.send(wire.events(id, 8, events.slice(1, 2), true));
        stream.end(); // the last fragment never comes
      } else {
        stream.send(wire.created(id, 8));
        stream.send(wire.events(id, 8, events.slice(0, 2), true));
        stream.send(wire.events(id, 8, events.slice(2)));
      }
    });
    await using etcd = client(gateway.url, 'websocket');
    await using watcher = await etcd.watchdir('', { fragment: true });
    const rec = new Recorder(watcher);
    await rec.waitFor(3);
    assert.equal(rec.batches.length, 1);
    assert.deepEqual(rec.lines(), ['8 put a 1', '8 put b 2', '8 put c 3']);
    assert.equal(creates[1]!.start_revision, '8', 'nothing of revision 8 counted as delivered');
    assert.equal(gateway.streams, 2);
  });

  test('progress: an answer to a progress request (watch_id -1) is not an event; a notification moves the resume point', async () => {
    const creates: Json[] = [];
    const listening = gate();
    await using gateway = await scriptedGateway(async (stream, index) => {
      const create = createOf(await stream.next());
      creates.push(create);
      const id = String(create.watch_id);
      if (index === 0) {
        stream.send(wire.created(id, 10));
        await listening.opened;
        stream.send(wire.progress('-1', 15));
        stream.send(wire.progress(id, 20));
        stream.end();
      } else {
        stream.send(wire.created(id, 25));
        stream.send(wire.events(id, 25, [wire.put('k', 'v', 25)]));
      }
    });
    await using etcd = client(gateway.url, 'websocket');
    await using watcher = await etcd.watch('k', { progressNotify: true });
    const progress: bigint[] = [];
    watcher.on('progress', (r) => progress.push(r));
    const rec = new Recorder(watcher);
    listening.open();
    await rec.waitFor(1);
    assert.deepEqual(progress, [20n]);
    assert.equal(creates[1]!.start_revision, '21', 'resumed after the notified revision');
    assert.deepEqual(rec.lines(), ['25 put k v']);
  });

  test('a stream that does not answer a progress request is torn down and resumed', async (t) => {
    const seen: Json[][] = [];
    const creates: Json[] = [];
    await using gateway = await scriptedGateway(async (stream, index) => {
      const messages: Json[] = [];
      seen.push(messages);
      const create = createOf(await stream.next());
      creates.push(create);
      const id = String(create.watch_id);
      if (index === 0) {
        stream.send(wire.created(id, 30));
        stream.send(wire.events(id, 31, [wire.put('k', 'before', 31)]));
        // From now on: silence. Record what the client asks.
        for (;;) messages.push(await stream.next(60_000));
      }
      stream.send(wire.created(id, 33));
      stream.send(wire.events(id, 32, [wire.put('k', 'during', 32)]));
      stream.send(wire.events(id, 33, [wire.put('k', 'after', 33)]));
    });
    await using etcd = client(gateway.url, 'websocket', {
      progressInterval: 100,
      progressTimeout: 200,
    });
    await using watcher = await etcd.watch('k');
    const disconnects: Array<{ error: Error; at: number }> = [];
    const start = performance.now();
    watcher.on('disconnected', (error) => disconnects.push({ error, at: performance.now() }));
    const rec = new Recorder(watcher);
    await rec.waitFor(3);
    assert.deepEqual(rec.lines(), ['31 put k before', '32 put k during', '33 put k after']);
    assert.equal(creates[1]!.start_revision, '32');
    assert.ok(
      seen[0]!.some((m) => m.progress_request !== undefined),
      'the client asked the silent stream for progress',
    );
    const stall = disconnects[0]!;
    assert.ok(stall.error instanceof UnavailableError);
    assert.match(stall.error.message, /stalled/);
    t.diagnostic(`stall detected ${Math.round(stall.at - start)} ms after the watch was created`);
  });

  test('a handshake that never completes is abandoned for the next endpoint', async () => {
    await using silent = await silentServer();
    await using gateway = await scriptedGateway(async (stream) => {
      const id = String(createOf(await stream.next()).watch_id);
      stream.send(wire.created(id, 3));
      stream.send(wire.events(id, 4, [wire.put('k', 'v', 4)]));
    });
    await using etcd = createClient({
      transport: 'gateway',
      endpoints: [silent.url, gateway.url],
      apiPrefix: '/v3',
      codec: 'string',
      watch: { progressInterval: 100, progressTimeout: 200 },
    });
    await using watcher = await etcd.watch('k');
    const rec = new Recorder(watcher);
    await rec.waitFor(1);
    assert.deepEqual(rec.lines(), ['4 put k v']);
    assert.ok(silent.connections >= 1);
  });

  test('a store revision below what was delivered (a replaced cluster) is a RevisionRegressedError', async () => {
    await using gateway = await scriptedGateway(async (stream, index) => {
      const id = String(createOf(await stream.next()).watch_id);
      if (index === 0) {
        stream.send(wire.created(id, 100));
        stream.send(wire.events(id, 101, [wire.put('k', 'v', 101)]));
        stream.end();
      } else {
        stream.send(wire.created(id, 3)); // a fresh cluster
      }
    });
    await using etcd = client(gateway.url, 'websocket');
    const watcher = await etcd.watch('k');
    const errors: Error[] = [];
    watcher.on('error', (e) => errors.push(e));
    const rec = new Recorder(watcher);
    const err = await rec.ended;
    assert.ok(err instanceof RevisionRegressedError, String(err));
    assert.equal(err.code, 'ETCDKIT_REVISION_REGRESSED');
    assert.deepEqual(errors, [err]);
    assert.deepEqual(rec.lines(), ['101 put k v']);
    assert.equal(watcher.ended, true);
  });

  test('messages are routed by watch ID: several watchers on one socket', async () => {
    await using gateway = await scriptedGateway(async (stream) => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const create = createOf(await stream.next());
        ids.push(String(create.watch_id));
        stream.send(wire.created(String(create.watch_id), 9));
      }
      // Answer in reverse order, interleaved.
      for (const [n, id] of [...ids].reverse().entries()) {
        stream.send(wire.events(id, 10 + n, [wire.put(`key-of-${id}`, 'v', 10 + n)]));
      }
    });
    await using etcd = client(gateway.url, 'websocket');
    const watchers = await Promise.all([etcd.watch('a'), etcd.watch('b'), etcd.watch('c')]);
    const recs = watchers.map((w) => new Recorder(w));
    for (const rec of recs) await rec.waitFor(1);
    for (const [i, rec] of recs.entries()) {
      assert.equal(rec.events.length, 1);
      assert.equal(rec.events[0]!.kv.key, `key-of-${watchers[i]!.id}`);
    }
    assert.equal(gateway.streams, 1);
    assert.equal(etcd.socketStats.watch, 1);
    for (const w of watchers) await w.cancel();
  });
});

describe('http: protocol', () => {
  test('NDJSON split into single bytes and merged into one write is read intact', async () => {
    await using gateway = await scriptedGateway(async (stream: ScriptedStream) => {
      const id = String(createOf(await stream.next()).watch_id);
      stream.send(wire.created(id, 1));
      const line = (m: Json) => `${JSON.stringify(m)}\n`;
      // One byte per write, through a multi-byte value.
      const split = Buffer.from(line(wire.events(id, 2, [wire.put('k', 'ключ 🔑', 2)])));
      for (const byte of split) {
        stream.sendRaw(Buffer.of(byte));
        await new Promise((resolve) => setImmediate(resolve));
      }
      // Three messages in one write, with a blank line.
      stream.sendRaw(
        line(wire.events(id, 3, [wire.put('k', 'x', 3)])) +
          '\n' +
          line(wire.events(id, 4, [wire.put('k', 'y', 4)])) +
          line(wire.events(id, 5, [wire.del('k', 5)])),
      );
    });
    await using etcd = client(gateway.url, 'http');
    await using watcher = await etcd.watch('k');
    const rec = new Recorder(watcher);
    await rec.waitFor(4);
    assert.deepEqual(rec.lines(), ['2 put k ключ 🔑', '3 put k x', '4 put k y', '5 delete k ']);
  });

  test('a non-retryable error inside the stream ends the watcher with its typed error', async () => {
    const listening = gate();
    await using gateway = await scriptedGateway(async (stream) => {
      const id = String(createOf(await stream.next()).watch_id);
      stream.send(wire.created(id, 1));
      await listening.opened;
      stream.send(wire.events(id, 2, [wire.put('k', 'v', 2)]));
      stream.send(wire.error(7, 'etcdserver: permission denied', 403, 'Forbidden'));
    });
    await using etcd = client(gateway.url, 'http');
    const watcher = await etcd.watch('k');
    const errors: Error[] = [];
    watcher.on('error', (e) => errors.push(e));
    const rec = new Recorder(watcher);
    listening.open();
    const err = await rec.ended;
    assert.ok(err instanceof PermissionDeniedError, String(err));
    assert.equal(err.grpcCode, 7);
    assert.deepEqual(errors, [err]);
    assert.deepEqual(rec.lines(), ['2 put k v']);
    assert.equal(gateway.streams, 1, 'not retried');
  });

  test('a line that is not JSON ends the watcher with a ProtocolError', async () => {
    const listening = gate();
    await using gateway = await scriptedGateway(async (stream) => {
      const id = String(createOf(await stream.next()).watch_id);
      stream.send(wire.created(id, 1));
      await listening.opened;
      stream.sendRaw('{"result": broken\n');
    });
    await using etcd = client(gateway.url, 'http');
    const watcher = await etcd.watch('k');
    const ended = new Recorder(watcher).ended;
    listening.open();
    const err = await ended;
    assert.ok(err instanceof ProtocolError, String(err));
  });

  test('each watcher has its own request', async () => {
    await using gateway = await scriptedGateway(async (stream) => {
      const create = createOf(await stream.next());
      const id = String(create.watch_id);
      stream.send(wire.created(id, 1));
      const key = Buffer.from(String(create.key), 'base64').toString('utf8');
      stream.send(wire.events(id, 2, [wire.put(key, `for ${key}`, 2)]));
    });
    await using etcd = client(gateway.url, 'http');
    const watchers = await Promise.all([etcd.watch('a'), etcd.watch('b'), etcd.watch('c')]);
    const recs = watchers.map((w) => new Recorder(w));
    for (const rec of recs) await rec.waitFor(1);
    assert.deepEqual(
      recs.map((r) => r.lines()[0]),
      ['2 put a for a', '2 put b for b', '2 put c for c'],
    );
    assert.equal(gateway.streams, 3);
    for (const w of watchers) await w.cancel();
    await eventually(() => assert.equal(etcd.socketStats.watch, 0));
  });
});
