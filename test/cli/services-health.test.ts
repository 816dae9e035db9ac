// `etcdkit services ls|watch` show each instance's health, in text and in --json.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { Registry } from '@etcdkit/registry';
import { cli } from './run-cli.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(() => etcd.close());

const lines = (out: string) =>
  out
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

test('services ls and watch show a health column, and healthy fields under --json', async () => {
  const prefix = `${uniquePrefix('cli-services-health')}reg`;
  await using client = new Etcd({ endpoints: etcd.endpoint });
  await using registry = new Registry(client, { prefix });
  let aPasses = true;
  await registry.register(
    'api',
    { id: 'api-1', address: '127.0.0.1', port: 8080 },
    { health: { check: () => aPasses, interval: 20, failureThreshold: 1 } },
  );
  await registry.register(
    'api',
    { id: 'api-2', address: '127.0.0.1', port: 8081 },
    { health: { check: () => Promise.reject(new Error('disk full')) } },
  );
  await registry.register('api', { id: 'api-3', address: '127.0.0.1', port: 8082 });
  const args = ['--registry-prefix', prefix];

  const ls = await cli(etcd.endpoint, ['services', 'ls', 'api', ...args]).done;
  assert.equal(ls.code, 0, ls.err);
  assert.deepEqual(ls.out.trim().split('\n'), [
    'api-1\t127.0.0.1:8080\tup\thealthy\tweight=1',
    'api-2\t127.0.0.1:8081\tup\tunhealthy\tweight=1\treason="disk full"',
    'api-3\t127.0.0.1:8082\tup\thealthy\tweight=1',
  ]);

  const json = lines(
    (await cli(etcd.endpoint, ['services', 'ls', 'api', '--json', ...args]).done).out,
  );
  assert.deepEqual(
    json.map((i) => [i.id, i.healthy, i.healthReason]),
    [
      ['api-1', true, undefined],
      ['api-2', false, 'disk full'],
      ['api-3', true, undefined],
    ],
  );
  assert.ok(!Number.isNaN(Date.parse(String(json[1]!.healthSince))), 'healthSince is a time');
  assert.equal(json[2]!.healthSince, undefined, 'no check, no healthSince');

  const watcher = cli(etcd.endpoint, ['services', 'watch', 'api', ...args]);
  await watcher.output((o) => o.split('\n').length > 3);
  aPasses = false;
  const out = await watcher.output((o) => o.split('\n').length > 4);
  watcher.child.kill('SIGINT');
  assert.equal((await watcher.done).code, 0);
  assert.deepEqual(out.trim().split('\n'), [
    'added\tapi-1\t127.0.0.1:8080\tup\thealthy',
    'added\tapi-2\t127.0.0.1:8081\tup\tunhealthy\treason="disk full"',
    'added\tapi-3\t127.0.0.1:8082\tup\thealthy',
    'updated\tapi-1\t127.0.0.1:8080\tup\tunhealthy\treason="the check reported unhealthy"',
  ]);
});
