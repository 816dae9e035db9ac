import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import {
  AuthenticationError,
  Etcd,
  InvalidArgumentError,
  PermissionDeniedError,
} from '@etcdkit/client';
import {
  type EtcdCluster,
  eventually,
  findEtcdctl,
  startEtcd,
  uniquePrefix,
} from '@etcdkit/harness';
import { labelledMetric } from '../watch/support.js';

// Tokens live one second, so expiry happens during the tests.
let etcd: EtcdCluster;

function etcdctl(...args: string[]): string {
  return execFileSync(findEtcdctl(), [`--endpoints=${etcd.endpoint}`, ...args], {
    encoding: 'utf8',
  });
}

before(async () => {
  etcd = await startEtcd({ flags: ['--auth-token=simple', '--auth-token-ttl=1'] });
  etcdctl('user', 'add', 'root:rootpw');
  etcdctl('user', 'add', 'alice:alicepw');
  etcdctl('role', 'add', 'app');
  etcdctl('role', 'grant-permission', 'app', 'readwrite', '--prefix=true', 'app/');
  etcdctl('user', 'grant-role', 'alice', 'app');
  etcdctl('auth', 'enable');
});
after(() => etcd.close());

const alice = { user: 'alice', password: 'alicepw' };

/** Authenticate calls etcd has served, over either transport (the gateway calls it by gRPC too). */
const authentications = () =>
  labelledMetric(etcd.endpoint, 'grpc_server_started_total', {
    grpc_method: 'Authenticate',
    grpc_service: 'etcdserverpb.Auth',
  });

describe('auth', () => {
  test('kv, watch and sessions work with a user and password', async () => {
    await using client = new Etcd({
      endpoints: etcd.endpoint,
      auth: alice,
      keyPrefix: uniquePrefix('app').replace(/^\//, 'app/'),
    });
    await client.set('k', 1);
    assert.equal((await client.get('k'))?.value, 1);
    await using watcher = await client.watch('k');
    await client.set('k', 2);
    const batch = await watcher[Symbol.asyncIterator]().next();
    assert.equal(batch.value?.events[0]?.kv.value, 2);
    await using session = await client.session({ ttl: 2 });
    let renewed = 0;
    session.on('renewed', () => renewed++);
    await eventually(() => assert.ok(renewed >= 2, `renewed ${renewed} times`), { timeout: 5000 });
    assert.equal(session.alive, true);
  });

  test('an expired token is renewed and the call goes through', async () => {
    // A long refresh interval leaves only the refusal to trigger renewal.
    await using client = new Etcd({
      endpoints: etcd.endpoint,
      auth: { ...alice, refreshInterval: 3_600_000 },
    });
    await client.set('app/expiry', 'a');
    const before = await authentications();
    await new Promise((resolve) => setTimeout(resolve, 2500)); // past the 1 s token TTL
    await client.set('app/expiry', 'b');
    assert.equal((await client.get('app/expiry'))?.value, 'b');
    assert.ok((await authentications()) > before, 'a new token was fetched');
  });

  test('concurrent first calls share one authentication', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint, auth: alice, apiPrefix: '/v3' });
    const before = await authentications();
    await Promise.all(Array.from({ length: 20 }, (_, i) => client.set(`app/concurrent/${i}`, i)));
    assert.equal((await authentications()) - before, 1);
  });

  test('a wrong password is an AuthenticationError', async () => {
    await using client = new Etcd({
      endpoints: etcd.endpoint,
      auth: { user: 'alice', password: 'nope' },
    });
    await assert.rejects(client.get('app/x'), AuthenticationError);
  });

  test('a wrong password: watch and watchdir reject with AuthenticationError, as get does', async () => {
    await using client = new Etcd({
      endpoints: etcd.endpoint,
      auth: { user: 'alice', password: 'nope' },
      timeout: 20_000,
    });
    await assert.rejects(client.watch('app/x'), AuthenticationError);
    await assert.rejects(client.watchdir('app/'), AuthenticationError);
  });

  test('no credentials: a watch is refused with the same error class as a get', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint, timeout: 20_000 });
    const getError = await client.get('app/x').catch((err: unknown) => err);
    const watchError = await client.watch('app/x').catch((err: unknown) => err);
    assert.ok(watchError instanceof Error);
    assert.equal(watchError.name, (getError as Error).name);
  });

  test('no credentials on an auth-enabled cluster is refused', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint });
    await assert.rejects(
      client.get('app/x'),
      (err) => err instanceof AuthenticationError || err instanceof InvalidArgumentError,
    );
  });

  test('a key outside the role is PermissionDeniedError', async () => {
    await using client = new Etcd({ endpoints: etcd.endpoint, auth: alice });
    await assert.rejects(client.set('elsewhere/x', 1), PermissionDeniedError);
  });

  test('bad auth options are refused before anything is sent', () => {
    assert.throws(
      () => new Etcd({ endpoints: etcd.endpoint, auth: { user: '', password: 'x' } }),
      InvalidArgumentError,
    );
    assert.throws(
      () => new Etcd({ endpoints: etcd.endpoint, auth: alice, watch: { transport: 'websocket' } }),
      InvalidArgumentError,
    );
  });
});
