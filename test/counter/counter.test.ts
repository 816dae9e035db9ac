// The counter against one etcd member: reads, adds, compare-and-set, set and
// reset; concurrent adds from several clients; keys that hold no number.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd, InvalidArgumentError } from '@etcdkit/client';
import { Counter, NotACounterError } from '@etcdkit/counter';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';

let cluster: EtcdCluster;
let etcd: Etcd;
let text: Etcd<string>;
before(async () => {
  cluster = await startEtcd();
  const keyPrefix = uniquePrefix('counter');
  etcd = new Etcd({ endpoints: cluster.endpoint, keyPrefix });
  text = new Etcd({ endpoints: cluster.endpoint, keyPrefix, codec: 'string' });
});
after(async () => {
  await etcd?.close();
  await text?.close();
  await cluster?.close();
});

test('a missing key reads 0n; add, set and reset keep decimal text under the key', async () => {
  const hits = new Counter(etcd, 'hits');
  assert.equal(await hits.get(), 0n);
  assert.equal(await hits.add(5), 5n);
  assert.equal(await hits.add(-7n), -2n);
  assert.equal(await hits.add(2n ** 70n), 2n ** 70n - 2n);
  assert.equal((await text.get('hits'))?.value, (2n ** 70n - 2n).toString());
  await hits.set(-42);
  assert.equal((await text.get('hits'))?.value, '-42');
  assert.equal(await hits.get(), -42n);
  await hits.reset();
  assert.equal(await text.get('hits'), undefined);
  assert.equal(await hits.get(), 0n);
  // A value written by another tool as plain decimal text is read as is.
  await text.set('hits', '1234');
  assert.equal(await hits.add(1), 1235n);
});

test('concurrent adds from three clients sum exactly, each seeing its own new value', async () => {
  const keyPrefix = uniquePrefix('counter-adds');
  const clients = [0, 1, 2].map(() => new Etcd({ endpoints: cluster.endpoint, keyPrefix }));
  try {
    const counters = clients.map((c) => new Counter(c, 'total'));
    const deltas = Array.from({ length: 90 }, (_, i) => BigInt(i + 1));
    const returned = await Promise.all(deltas.map((d, i) => counters[i % 3]!.add(d)));
    const sum = deltas.reduce((a, b) => a + b, 0n);
    assert.equal(await counters[0]!.get(), sum);
    // Every add was applied at its own point: the values after each are distinct, the last is the sum.
    assert.equal(new Set(returned).size, deltas.length);
    assert.ok(returned.includes(sum));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
});

test('compareAndSet swaps only from the expected value, and exactly one racer wins', async () => {
  const slot = new Counter(etcd, 'slot');
  assert.deepEqual(await slot.compareAndSet(1, 5), { swapped: false, value: 0n });
  assert.equal(await text.get('slot'), undefined);
  assert.deepEqual(await slot.compareAndSet(0, 5), { swapped: true, value: 5n });
  assert.deepEqual(await slot.compareAndSet(5n, 6n), { swapped: true, value: 6n });
  assert.deepEqual(await slot.compareAndSet(5n, 7n), { swapped: false, value: 6n });
  assert.equal(await slot.get(), 6n);

  const race = new Counter(etcd, 'race');
  const results = await Promise.all(
    Array.from({ length: 12 }, (_, i) => race.compareAndSet(0, i + 1)),
  );
  const winners = results.filter((r) => r.swapped);
  assert.equal(winners.length, 1);
  const won = winners[0]!.value;
  assert.equal(await race.get(), won);
  for (const r of results) if (!r.swapped) assert.equal(r.value, won);
});

test('a key holding anything but a decimal integer is not a counter', async () => {
  for (const stored of ['abc', '1.5', '007', '', ' 1', '+3', '-0', '1e3']) {
    await text.set('odd', stored);
    const odd = new Counter(etcd, 'odd');
    const notACounter = (err: unknown) =>
      err instanceof NotACounterError && err.text === stored && err.key === 'odd';
    await assert.rejects(odd.get(), notACounter, JSON.stringify(stored));
    await assert.rejects(odd.add(1), notACounter);
    await assert.rejects(odd.compareAndSet(0, 1), notACounter);
    assert.equal((await text.get('odd'))?.value, stored);
  }
  const odd = new Counter(etcd, 'odd');
  await odd.set(3);
  assert.equal(await odd.add(1), 4n);
});

test('an aborted call rejects with the reason', async () => {
  const reason = new Error('stop');
  const counter = new Counter(etcd, 'aborted');
  for (const call of [
    (signal: AbortSignal) => counter.get({ signal }),
    (signal: AbortSignal) => counter.add(1, { signal }),
    (signal: AbortSignal) => counter.compareAndSet(0, 1, { signal }),
  ]) {
    await assert.rejects(call(AbortSignal.abort(reason)), (err) => err === reason);
  }
  assert.equal(await text.get('aborted'), undefined);
});

test('bad arguments are refused with InvalidArgumentError', async () => {
  const counter = new Counter(etcd, 'checked');
  assert.throws(() => new Counter(etcd, ''), InvalidArgumentError);
  assert.throws(() => new Counter({} as Etcd, 'k'), InvalidArgumentError);
  for (const delta of [1.5, Number.NaN, 2 ** 60, '3', null]) {
    await assert.rejects(counter.add(delta as number), InvalidArgumentError, String(delta));
  }
  await assert.rejects(counter.compareAndSet(0, 0.5), InvalidArgumentError);
  await assert.rejects(counter.set(Number.POSITIVE_INFINITY), InvalidArgumentError);
  await assert.rejects(counter.get({ retries: 2 } as never), InvalidArgumentError);
  await assert.rejects(counter.reset({ timeout: -1 }), InvalidArgumentError);
  assert.equal(await text.get('checked'), undefined);
});
