/**
 * What only the gRPC transport promises: it speaks HTTP/2 on the client port,
 * it is chosen by the option or ETCDKIT_TRANSPORT, and with auth its watchers
 * and keepalives still share one Watch and one LeaseKeepAlive stream (the
 * gateway cannot carry a token on its WebSocket and falls back to a request
 * each). Everything else the transports share is tested on both by the runner.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Etcd, InvalidArgumentError, TimeoutError } from '@etcdkit/client';
import {
  type EtcdCluster,
  eventually,
  findEtcdctl,
  startEtcd,
  uniquePrefix,
} from '@etcdkit/harness';
import { labelledMetric } from '../watch/support.js';

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

describe('choosing the transport', () => {
  test('an unknown transport is refused, naming where it came from', () => {
    assert.throws(
      () => new Etcd({ transport: 'http3' as 'grpc' }),
      (err: unknown) => err instanceof InvalidArgumentError && /"http3"/.test(err.message),
    );
    const saved = process.env.ETCDKIT_TRANSPORT;
    process.env.ETCDKIT_TRANSPORT = 'grcp';
    try {
      assert.throws(
        () => new Etcd({}),
        (err: unknown) =>
          err instanceof InvalidArgumentError && /"grcp".*ETCDKIT_TRANSPORT/.test(err.message),
      );
      // The option wins over the environment.
      const chosen = new Etcd({ transport: 'gateway' });
      assert.equal(chosen.transport, 'gateway');
      void chosen.close();
      process.env.ETCDKIT_TRANSPORT = 'grpc';
      const fromEnv = new Etcd({});
      assert.equal(fromEnv.transport, 'grpc');
      void fromEnv.close();
    } finally {
      if (saved === undefined) delete process.env.ETCDKIT_TRANSPORT;
      else process.env.ETCDKIT_TRANSPORT = saved;
    }
  });

  test('watch.transport is the gateway’s choice and is refused on gRPC', () => {
    assert.throws(
      () => new Etcd({ transport: 'grpc', watch: { transport: 'http' } }),
      InvalidArgumentError,
    );
  });

  test('gRPC opens http:// endpoints with the HTTP/2 preface (h2c, prior knowledge)', async () => {
    const received: Buffer[] = [];
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('data', (chunk) => received.push(chunk));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    await using client = new Etcd({
      endpoints: `http://127.0.0.1:${port}`,
      transport: 'grpc',
      timeout: 500,
    });
    try {
      await assert.rejects(client.get('k'), TimeoutError);
      const head = Buffer.concat(received).subarray(0, PREFACE.length).toString('latin1');
      assert.equal(head, PREFACE);
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });
});

describe('gRPC with auth', () => {
  let etcd: EtcdCluster;
  before(async () => {
    etcd = await startEtcd();
    const etcdctl = (...args: string[]) =>
      execFileSync(findEtcdctl(), [`--endpoints=${etcd.endpoint}`, ...args], { encoding: 'utf8' });
    etcdctl('user', 'add', 'root:rootpw');
    etcdctl('auth', 'enable');
  });
  after(() => etcd.close());

  const streams = (method: string, service: string) =>
    labelledMetric(etcd.endpoint, 'grpc_server_started_total', {
      grpc_method: method,
      grpc_service: service,
    });

  test('every watcher shares one Watch stream and every keepalive one LeaseKeepAlive stream', async () => {
    const prefix = uniquePrefix('grpc-auth');
    await using client = new Etcd({
      endpoints: etcd.endpoint,
      transport: 'grpc',
      auth: { user: 'root', password: 'rootpw' },
      keyPrefix: prefix,
    });
    await client.set('warm', 0);
    const watchesBefore = await streams('Watch', 'etcdserverpb.Watch');
    const keepalivesBefore = await streams('LeaseKeepAlive', 'etcdserverpb.Lease');
    const watchers = await Promise.all(Array.from({ length: 5 }, (_, i) => client.watch(`k${i}`)));
    const sessions = await Promise.all(Array.from({ length: 3 }, () => client.session({ ttl: 2 })));
    try {
      for (let i = 0; i < 5; i++) await client.set(`k${i}`, i);
      for (const [i, watcher] of watchers.entries()) {
        const batch = await watcher[Symbol.asyncIterator]().next();
        assert.equal(batch.value?.events[0]?.kv.value, i);
      }
      let renewed = 0;
      for (const session of sessions) session.on('renewed', () => renewed++);
      await eventually(() => assert.ok(renewed >= 6, `renewed ${renewed} times`), {
        timeout: 5000,
      });
      assert.deepEqual(client.socketStats, { watch: 1, keepalive: 1 });
      assert.equal(await streams('Watch', 'etcdserverpb.Watch'), watchesBefore + 1);
      assert.equal(await streams('LeaseKeepAlive', 'etcdserverpb.Lease'), keepalivesBefore + 1);
    } finally {
      for (const watcher of watchers) await watcher.cancel();
      for (const session of sessions) await session.close();
    }
  });

  test('a one-off keepalive answers as on the gateway', async () => {
    await using client = new Etcd({
      endpoints: etcd.endpoint,
      transport: 'grpc',
      auth: { user: 'root', password: 'rootpw' },
    });
    const lease = await client.grant(30);
    try {
      const renewed = await client.keepalive(lease.id);
      assert.equal(renewed.id, lease.id);
      assert.ok(renewed.ttl > 0 && renewed.ttl <= 30, `ttl ${renewed.ttl}`);
    } finally {
      await client.revoke(lease.id);
    }
  });
});
