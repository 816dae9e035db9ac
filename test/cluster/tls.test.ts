import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Etcd, type EtcdOptions, UnavailableError } from '@etcdkit/client';
import {
  type EtcdCluster,
  makeCertificates,
  startEtcd,
  type TestCertificates,
  transportUnderTest,
  uniquePrefix,
} from '@etcdkit/harness';

let certs: TestCertificates;
let plain: EtcdCluster;
let mutual: EtcdCluster;

before(async () => {
  certs = makeCertificates();
  [plain, mutual] = await Promise.all([
    startEtcd({ tls: certs }),
    startEtcd({ tls: { ...certs, clientCertAuth: true } }),
  ]);
});
after(async () => {
  await Promise.all([plain?.close(), mutual?.close()]);
  rmSync(certs.dir, { recursive: true, force: true });
});

async function exercise(client: Etcd<unknown>): Promise<void> {
  await client.set('k', 'v');
  assert.equal((await client.get('k'))?.value, 'v');
  await using watcher = await client.watch('k');
  await client.set('k', 'w');
  const next = await watcher[Symbol.asyncIterator]().next();
  assert.equal(next.value?.events[0]?.kv.value, 'w');
  await using session = await client.session({ ttl: 5 });
  assert.ok((await client.timetolive(session.lease))?.ttl);
}

describe('TLS', () => {
  test('https endpoints work with the CA given', async () => {
    assert.match(plain.endpoint, /^https:/);
    await using client = new Etcd({
      endpoints: plain.endpoint,
      tls: { ca: certs.ca },
      keyPrefix: uniquePrefix(),
    });
    await exercise(client);
  });

  test('an untrusted server certificate is refused', async () => {
    await using client = new Etcd({ endpoints: plain.endpoint, timeout: 3000 });
    await assert.rejects(client.get('k'), UnavailableError);
  });

  test('a wrong servername: watch and watchdir reject with the error a get gives', async () => {
    // The gateway's two ways of carrying watches, and gRPC's one stream.
    const variants = [{ watch: { transport: 'websocket' } }, { watch: { transport: 'http' } }, {}];
    for (const variant of variants as EtcdOptions[]) {
      await using client = new Etcd({
        endpoints: plain.endpoint,
        tls: { ca: certs.ca, servername: 'wrong.example' },
        timeout: 20_000,
        ...(transportUnderTest() === 'grpc' ? {} : variant),
      });
      await assert.rejects(client.get('k'), UnavailableError);
      await assert.rejects(client.watch('k'), UnavailableError);
      await assert.rejects(client.watchdir('d/'), UnavailableError);
    }
  });

  test('rejectUnauthorized: false skips verification', async () => {
    await using client = new Etcd({
      endpoints: plain.endpoint,
      tls: { rejectUnauthorized: false },
    });
    await client.get('k');
  });

  test('client-certificate auth: with the certificate it works, without it is refused', async () => {
    await using withCert = new Etcd({
      endpoints: mutual.endpoint,
      tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
      keyPrefix: uniquePrefix(),
    });
    await exercise(withCert);
    await using without = new Etcd({
      endpoints: mutual.endpoint,
      tls: { ca: certs.ca },
      timeout: 3000,
    });
    await assert.rejects(without.get('k'), UnavailableError);
  });
});
