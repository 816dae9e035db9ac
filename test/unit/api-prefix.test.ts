// The gateway's path prefix depends on the server version; etcd 3.2 and 3.3 are
// not installed here, so a small HTTP server on 127.0.0.1 plays their /version.
// The prefix is the gateway's alone: these clients speak the gateway.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Etcd, ProtocolError } from '@etcdkit/client';

async function fakeGateway(serverVersion: string) {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(`${req.method} ${req.url}`);
    res.setHeader('content-type', 'application/json');
    if (req.url === '/version') {
      res.end(JSON.stringify({ etcdserver: serverVersion, etcdcluster: serverVersion }));
    } else {
      res.end(JSON.stringify({ header: { revision: '7' } }));
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, paths, close: () => new Promise((resolve) => server.close(resolve)) };
}

for (const [version, prefix] of [
  ['3.2.32', '/v3alpha'],
  ['3.3.27', '/v3beta'],
  ['3.4.23', '/v3'],
  ['3.5.9', '/v3'],
] as const) {
  test(`etcd ${version} is spoken to under ${prefix}`, async () => {
    const gateway = await fakeGateway(version);
    const etcd = new Etcd({ transport: 'gateway', endpoints: gateway.url });
    try {
      await Promise.all([etcd.get('a'), etcd.get('b')]);
      await etcd.get('c');
      // Detected once, shared by the concurrent calls.
      assert.deepEqual(gateway.paths, [
        'GET /version',
        `POST ${prefix}/kv/range`,
        `POST ${prefix}/kv/range`,
        `POST ${prefix}/kv/range`,
      ]);
    } finally {
      await etcd.close();
      await gateway.close();
    }
  });
}

test('an etcd without a v3 gateway is refused with ProtocolError', async () => {
  const gateway = await fakeGateway('3.1.20');
  const etcd = new Etcd({ transport: 'gateway', endpoints: gateway.url });
  try {
    await assert.rejects(etcd.get('a'), ProtocolError);
    assert.deepEqual(gateway.paths, ['GET /version']);
  } finally {
    await etcd.close();
    await gateway.close();
  }
});

test('an explicit apiPrefix skips detection', async () => {
  const gateway = await fakeGateway('3.4.23');
  const etcd = new Etcd({ transport: 'gateway', endpoints: gateway.url, apiPrefix: '/v3beta' });
  try {
    await etcd.get('a');
    assert.deepEqual(gateway.paths, ['POST /v3beta/kv/range']);
  } finally {
    await etcd.close();
    await gateway.close();
  }
});
