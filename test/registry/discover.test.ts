// Consumers: the live set and its events, the change stream, ready(), services(),
// one-shot listings, and the pickers.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { Etcd, TimeoutError } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import {
  NoInstancesError,
  type Picker,
  type Registration,
  Registry,
  randomPicker,
  roundRobinPicker,
  type ServiceChange,
  type ServiceInstance,
  ServiceSetClosedError,
  weightedPicker,
} from '@etcdkit/registry';
import { ids } from './helpers.js';

let etcd: EtcdCluster;
let client: Etcd;
before(async () => {
  etcd = await startEtcd();
  client = new Etcd({ endpoints: etcd.endpoint });
});
after(async () => {
  await client?.close();
  await etcd?.close();
});

const newRegistry = () => new Registry(client, { prefix: uniquePrefix('registry-disc'), ttl: 30 });

const at = (id: string, port = 80, weight = 1) => ({ id, address: '127.0.0.1', port, weight });

describe('ServiceSet', () => {
  test('lists what exists, then follows added, updated and removed', async () => {
    const registry = newRegistry();
    const a = await registry.register('api', at('a'));
    await registry.register('other', at('o'));
    await using set = await registry.discover('api');
    assert.deepEqual(ids(set), ['a'], 'only its own service');
    assert.equal(set.service, 'api');
    assert.ok(set.revision > 0n);
    const events: string[] = [];
    set.on('added', (i) => events.push(`added ${i.id}`));
    set.on('updated', (i, prev) => events.push(`updated ${i.id} ${prev.port}->${i.port}`));
    set.on('removed', (i) => events.push(`removed ${i.id}`));
    const b = await registry.register('api', at('b'));
    await a.update({ port: 81 });
    await b.deregister();
    await eventually(() => assert.deepEqual(events, ['added b', 'updated a 80->81', 'removed b']));
    assert.deepEqual(ids(set), ['a']);
    await registry.close();
  });

  test('changes() is an async iterable of changes; initial: true replays the set first', async () => {
    const registry = newRegistry();
    await registry.register('api', at('a'));
    await using set = await registry.discover('api');
    const replay = set.changes({ initial: true });
    const live = set.changes();
    const c = await registry.register('api', at('c'));
    await c.update({ weight: 2 });
    await c.deregister();
    const take = async (it: AsyncIterableIterator<ServiceChange>, n: number) => {
      const out: string[] = [];
      for await (const change of it) {
        out.push(`${change.type} ${change.instance.id}`);
        if (out.length === n) break;
      }
      return out;
    };
    assert.deepEqual(await take(live, 3), ['added c', 'updated c', 'removed c']);
    assert.deepEqual(await take(replay, 4), ['added a', 'added c', 'updated c', 'removed c']);
    // Closing the set ends the streams still open.
    const open = set.changes();
    const ended = (async () => {
      for await (const _ of open) {
        // no changes expected
      }
      return 'ended';
    })();
    await set.close();
    assert.equal(await ended, 'ended');
    await registry.close();
  });

  test('ready() waits for an up instance; times out, aborts and closes with typed errors', async () => {
    const registry = newRegistry();
    await using set = await registry.discover('api');
    await assert.rejects(
      set.ready({ timeout: 100 }),
      (err: unknown) => err instanceof NoInstancesError && err.code === 'ETCDKIT_NO_INSTANCES',
    );
    const controller = new AbortController();
    const aborted = set.ready({ signal: controller.signal });
    controller.abort(new Error('stop'));
    await assert.rejects(aborted, /stop/);

    const waiting = set.ready({ timeout: 10_000 });
    const reg = await registry.register('api', at('r'));
    const instances = await waiting;
    assert.deepEqual(ids(instances), ['r']);
    assert.deepEqual(ids(await set.ready()), ['r'], 'resolves at once when one is up');

    // A draining instance does not make the set ready.
    await reg.update({ status: 'draining' });
    await eventually(() => assert.equal(set.get('r')?.status, 'draining'));
    const again = set.ready({ timeout: 10_000 });
    await reg.update({ status: 'up' });
    assert.deepEqual(ids(await again), ['r']);

    const pending = assert.rejects(
      (await registry.discover('none')).ready(),
      ServiceSetClosedError,
    );
    await registry.close();
    await pending;
    await assert.rejects(set.ready(), ServiceSetClosedError);
  });

  test('services() lists every service name once; instances() reads one service once', async () => {
    const registry = newRegistry();
    assert.deepEqual(await registry.services(), []);
    for (const service of ['web', 'api', 'db']) {
      for (const id of ['1', '2', '3']) await registry.register(service, at(`${service}-${id}`));
    }
    assert.deepEqual(await registry.services(), ['api', 'db', 'web']);
    assert.deepEqual(ids(await registry.instances('db')), ['db-1', 'db-2', 'db-3']);
    const one = (await registry.instances('web'))[0]!;
    assert.equal(one.service, 'web');
    assert.equal(one.host, '127.0.0.1:80');
    assert.ok(one.registeredAt instanceof Date);
    assert.equal(typeof one.lease, 'bigint');
    await registry.close();
    assert.deepEqual(await registry.services(), []);
  });
});

describe('discover options', () => {
  test('signal cancels a pending discover and closes the set when it aborts later', async () => {
    const registry = newRegistry();
    await assert.rejects(
      registry.discover('api', { signal: AbortSignal.abort(new Error('no')) }),
      /no/,
    );
    const controller = new AbortController();
    const set = await registry.discover('api', { signal: controller.signal });
    const waiting = assert.rejects(set.ready(), ServiceSetClosedError);
    controller.abort(new Error('done'));
    await waiting;
    await eventually(() => assert.equal(set.open, false));
  });

  test('timeout bounds the first listing', async () => {
    // A member that accepts connections and never answers.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const { port } = silent.address() as AddressInfo;
    await using hung = new Etcd({ endpoints: `http://127.0.0.1:${port}`, apiPrefix: '/v3' });
    try {
      const started = performance.now();
      await assert.rejects(
        new Registry(hung).discover('api', { timeout: 300 }),
        (err: unknown) => err instanceof TimeoutError,
      );
      assert.ok(performance.now() - started < 5_000, 'gave up on its own deadline');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

describe('pick', () => {
  test('round-robin takes each up instance in ID order, and keeps its place as the set changes', async () => {
    const registry = newRegistry();
    const regs = new Map<string, Registration>();
    for (const id of ['c', 'a', 'b']) regs.set(id, await registry.register('api', at(id)));
    await using set = await registry.discover('api');
    const picks = Array.from({ length: 7 }, () => set.pick()?.id);
    assert.deepEqual(picks, ['a', 'b', 'c', 'a', 'b', 'c', 'a']);
    await regs.get('b')!.deregister();
    await eventually(() => assert.deepEqual(ids(set), ['a', 'c']));
    assert.deepEqual([set.pick('round-robin')?.id, set.pick('round-robin')?.id], ['c', 'a']);
    await registry.register('api', at('ab'));
    await eventually(() => assert.equal(set.size, 3));
    assert.deepEqual(
      Array.from({ length: 3 }, () => set.pick()?.id),
      ['ab', 'c', 'a'],
    );
    await registry.close();
  });

  test('weighted follows the weights; random covers all; empty sets give undefined', async () => {
    const registry = newRegistry();
    const weights: Record<string, number> = { light: 1, mid: 2, heavy: 7 };
    for (const [id, weight] of Object.entries(weights)) {
      await registry.register('api', at(id, 80, weight));
    }
    await using set = await registry.discover('api');
    const n = 20_000;
    const counts: Record<string, number> = { light: 0, mid: 0, heavy: 0 };
    for (let i = 0; i < n; i++) counts[set.pick('weighted')!.id]!++;
    for (const [id, weight] of Object.entries(weights)) {
      const share = counts[id]! / n;
      // Expected share weight/10; the standard error at n = 20,000 is under 0.004.
      assert.ok(Math.abs(share - weight / 10) < 0.03, `${id}: ${share} vs ${weight / 10}`);
    }
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(set.pick('random')!.id);
    assert.deepEqual([...seen].sort(), ['heavy', 'light', 'mid']);
    // A filter narrows the candidates; a custom picker gets them sorted by ID.
    assert.equal(set.pick('weighted', { filter: (i) => i.id === 'light' })?.id, 'light');
    const last: Picker = { pick: (candidates) => candidates.at(-1) };
    assert.equal(set.pick(last)?.id, 'mid');
    await using empty = await registry.discover('nobody');
    assert.equal(empty.pick(), undefined);
    assert.equal(empty.pick('weighted'), undefined);
    assert.equal(set.pick('random', { filter: () => false }), undefined);
    await registry.close();
  });

  test('pickers on plain arrays: deterministic with a given source of randomness', () => {
    const fake = (id: string, weight: number) => ({ id, weight }) as ServiceInstance;
    const list = [fake('a', 1), fake('b', 3)];
    const rr = roundRobinPicker();
    assert.deepEqual([rr.pick(list)?.id, rr.pick(list)?.id, rr.pick(list)?.id], ['a', 'b', 'a']);
    const w = weightedPicker({ random: () => 0.24 });
    assert.equal(w.pick(list)?.id, 'a', '0.24 * 4 = 0.96 falls in a (0..1)');
    const w2 = weightedPicker({ random: () => 0.25 });
    assert.equal(w2.pick(list)?.id, 'b', '1.0 falls in b (1..4)');
    assert.equal(randomPicker({ random: () => 0.99 }).pick(list)?.id, 'b');
    assert.equal(randomPicker().pick([]), undefined);
  });
});
