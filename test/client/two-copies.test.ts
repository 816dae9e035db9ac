// Two copies of the client package in one application (as npm installs them
// side by side): sessions, clients and errors of one work with the other.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as client from '@etcdkit/client';
import { Election } from '@etcdkit/election';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { LockTakenError, Mutex } from '@etcdkit/mutex';
import { Registry } from '@etcdkit/registry';

let etcd: EtcdCluster;
let copyDir: string;
let other: typeof client;

before(async () => {
  etcd = await startEtcd();
  // The copy sits inside the package's own tree, so its dependencies resolve as the original's do.
  const packageDir = dirname(
    dirname(realpathSync(fileURLToPath(import.meta.resolve('@etcdkit/client')))),
  );
  mkdirSync(join(packageDir, 'node_modules'), { recursive: true });
  copyDir = mkdtempSync(join(packageDir, 'node_modules', '.copy-'));
  cpSync(join(packageDir, 'package.json'), join(copyDir, 'package.json'));
  cpSync(join(packageDir, 'dist'), join(copyDir, 'dist'), { recursive: true });
  other = (await import(pathToFileURL(join(copyDir, 'dist', 'index.js')).href)) as typeof client;
});
after(async () => {
  if (copyDir) rmSync(copyDir, { recursive: true, force: true });
  await etcd?.close();
});

test('the copy is a separate module with its own classes', () => {
  assert.notEqual(other.Etcd, client.Etcd);
  assert.notEqual(other.EtcdError, client.EtcdError);
});

test('a client and a session of the other copy work with Mutex, Election and Registry', async () => {
  await using etcdOther = new other.Etcd({ endpoints: etcd.endpoint });
  const name = `${uniquePrefix('copies')}lock`;
  const byClient = await new Mutex(etcdOther as never, name).lock();
  await assert.rejects(new Mutex(etcdOther as never, name).tryLock(), LockTakenError);
  await byClient.release();
  await using session = await etcdOther.session({ ttl: 10 });
  const bySession = await new Mutex(session as never, name).lock();
  assert.equal((await etcdOther.get(bySession.key))?.lease, session.lease);
  await bySession.release();
  const leadership = await new Election(
    session as never,
    `${uniquePrefix('copies')}election`,
  ).campaign('me');
  await leadership.resign();

  const registry = new Registry(etcdOther as never, { prefix: uniquePrefix('copies-registry') });
  await using reg = await registry.register(
    'api',
    { id: 'a', address: '127.0.0.1', port: 1 },
    { session: session as never },
  );
  assert.equal(reg.lease, session.lease);
  await using set = await registry.discover('api');
  assert.equal(set.get('a')?.port, 1);
});

test("an error of either copy is instanceof the other copy's classes", async () => {
  await using etcdOther = new other.Etcd({ endpoints: etcd.endpoint });
  const fromOther = await etcdOther.keepalive(12345n).then(
    () => assert.fail('keepalive of an unknown lease resolved'),
    (err: unknown) => err,
  );
  assert.ok(fromOther instanceof other.LeaseNotFoundError);
  assert.ok(fromOther instanceof client.LeaseNotFoundError);
  assert.ok(fromOther instanceof client.EtcdError);
  assert.ok(fromOther instanceof Error);
  assert.equal(fromOther instanceof client.KeyNotFoundError, false);

  const ours = new client.LeaseNotFoundError('gone');
  assert.ok(ours instanceof other.LeaseNotFoundError);
  assert.ok(ours instanceof other.EtcdError);
  assert.equal(ours instanceof other.LeaseExistsError, false);
  // Subclasses defined by the other packages, on this copy's root.
  assert.ok(new LockTakenError('taken') instanceof other.EtcdError);
  assert.equal(new client.EtcdError('root') instanceof LockTakenError, false);
  // Only etcdkit's own errors: a look-alike is not one.
  const lookalike = Object.assign(new Error('x'), { name: 'LeaseNotFoundError' });
  assert.equal(lookalike instanceof client.LeaseNotFoundError, false);
  assert.equal((null as unknown) instanceof client.EtcdError, false);

  await using session = await etcdOther.session({ ttl: 10 });
  assert.ok(session instanceof client.Session);
  assert.equal({ lease: 1n } instanceof client.Session, false);
});

test('something that is neither a client nor a session is InvalidArgumentError', async () => {
  const notAClient = { endpoints: [etcd.endpoint] };
  assert.throws(() => new Mutex(notAClient as never, 'm'), client.InvalidArgumentError);
  assert.throws(() => new Registry(notAClient as never), client.InvalidArgumentError);
  await using etcdHere = new client.Etcd({ endpoints: etcd.endpoint });
  const registry = new Registry(etcdHere, { prefix: uniquePrefix('copies-bad') });
  await assert.rejects(
    registry.register(
      'api',
      { id: 'b', address: '127.0.0.1', port: 1 },
      {
        session: notAClient as never,
      },
    ),
    client.InvalidArgumentError,
  );
});
