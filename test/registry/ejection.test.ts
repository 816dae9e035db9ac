// Local ejection: a consumer that notes enough failed requests to an instance
// within the window passes it over for a while, then picks it again.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { Registry, type ServiceInstance } from '@etcdkit/registry';
import { ids } from './helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

const at = (id: string) => ({ id, address: '127.0.0.1', port: 9000 });

async function setUp(label: string) {
  const client = new Etcd({ endpoints: etcd.endpoint });
  const registry = new Registry(client, { prefix: uniquePrefix(label), ttl: 30 });
  for (const id of ['a', 'b']) await registry.register('api', at(id));
  return {
    registry,
    async [Symbol.asyncDispose]() {
      await registry.close();
      await client.close();
    },
  };
}

const picks = (pick: () => ServiceInstance | undefined, count = 12) =>
  [...new Set(Array.from({ length: count }, () => pick()?.id))].sort();

test('an instance with enough errors is ejected for a while, then picked again', async () => {
  await using s = await setUp('registry-eject');
  const set = await s.registry.discover('api', {
    ejection: { errors: 2, window: 60_000, duration: 300 },
  });
  const ejected: string[] = [];
  set.on('ejected', (i) => ejected.push(i.id));
  const a = set.get('a')!;
  assert.equal(set.noteError(a), false, 'one error is not enough');
  assert.deepEqual(
    picks(() => set.pick()),
    ['a', 'b'],
  );
  assert.equal(set.noteError('a'), true, 'the second ejects');
  assert.deepEqual(ejected, ['a']);
  assert.deepEqual(set.ejected(), ['a']);
  assert.deepEqual(
    picks(() => set.pick('random')),
    ['b'],
  );
  assert.deepEqual(ids(set.candidates()), ['b']);
  assert.deepEqual(ids(set.instances()), ['a', 'b'], 'still in the set: ejection is local');
  assert.equal(set.noteError('a'), false, 'errors while ejected do not extend it');

  await eventually(() => assert.deepEqual(set.ejected(), []));
  assert.deepEqual(
    picks(() => set.pick()),
    ['a', 'b'],
    'back after the duration',
  );
  assert.equal(set.noteError('a'), false, 'the count started again');
});

test('when every instance is ejected the fallback picks among them, unless turned off', async () => {
  await using s = await setUp('registry-eject-all');
  const set = await s.registry.discover('api', { ejection: { errors: 1, duration: 60_000 } });
  assert.equal(set.noteError('a'), true);
  assert.equal(set.noteError('b'), true);
  assert.deepEqual(set.ejected(), ['a', 'b']);
  assert.deepEqual(ids(set.candidates()), ['a', 'b']);
  assert.deepEqual(
    picks(() => set.pick()),
    ['a', 'b'],
  );
  assert.equal(set.pick('round-robin', { fallback: false }), undefined);
});

test('errors outside the window do not add up; a removed instance is forgotten', async () => {
  await using s = await setUp('registry-eject-window');
  const set = await s.registry.discover('api', { ejection: { errors: 2, window: 1 } });
  assert.equal(set.noteError('a'), false);
  await sleep(20); // so the first error is surely older than the 1 ms window
  assert.equal(set.noteError('a'), false);
  assert.deepEqual(set.ejected(), []);

  await using otherClient = new Etcd({ endpoints: etcd.endpoint });
  const other = new Registry(otherClient, { prefix: s.registry.prefix, ttl: 30 });
  const counting = await other.discover('api', { ejection: { errors: 2 } });
  assert.equal(counting.noteError('b'), false);
  // b leaves and comes back: its error count starts over.
  await s.registry.close();
  await eventually(() => assert.equal(counting.get('b'), undefined));
  await other.register('api', at('b'));
  await eventually(() => assert.ok(counting.get('b')));
  assert.equal(counting.noteError('b'), false, 'the earlier error was forgotten');
  assert.equal(counting.noteError('unknown'), false, 'not in the set');
  await other.close();
});

test('ejection: false turns it off', async () => {
  await using s = await setUp('registry-eject-off');
  const set = await s.registry.discover('api', { ejection: false });
  for (let n = 0; n < 5; n++) assert.equal(set.noteError('a'), false);
  assert.deepEqual(set.ejected(), []);
  assert.deepEqual(ids(set.candidates()), ['a', 'b']);
});
