// observe() against one real etcd: the leader now, then every change in
// order, "no leader" (undefined) whenever the election is left empty, and no
// change lost across a broken connection.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { Election } from '@etcdkit/election';
import {
  type EtcdCluster,
  eventually,
  startEtcd,
  startProxy,
  uniquePrefix,
} from '@etcdkit/harness';
import { Observer } from './observer.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

/** A client of its own key prefix. */
function connect(): Etcd {
  return new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('observe') });
}

async function keysUnder(client: Etcd, prefix: string): Promise<string[]> {
  return (await client.readdir(prefix)).kvs.map((kv) => kv.key);
}

/** An observer of `name`, once it has reported the election's state when it started. */
async function observing(client: Etcd, name: string, first: string | null): Promise<Observer> {
  const observer = new Observer(new Election(client, name));
  await eventually(() => assert.deepEqual(observer.values(), [first]));
  return observer;
}

test('the leader now, then every change in order, once each; none between leaders', async () => {
  await using client = connect();
  await using a = await client.session({ ttl: 10 });
  await using b = await client.session({ ttl: 10 });
  const ea = new Election(client, 'watched', { session: a });
  const eb = new Election(client, 'watched', { session: b });
  const observer = await observing(client, 'watched', null);

  const la = await ea.campaign('a1');
  await eventually(() => assert.deepEqual(observer.values(), [null, 'a1']));
  const pending = eb.campaign('b1'); // a candidate joining changes nothing seen
  await eventually(async () => assert.equal((await keysUnder(client, 'watched/')).length, 2));
  await la.proclaim('a2');
  await eventually(() => assert.deepEqual(observer.values(), [null, 'a1', 'a2']));
  await la.resign(); // b1 is next in line: no moment without a leader
  const lb = await pending;
  await eventually(() => assert.deepEqual(observer.values(), [null, 'a1', 'a2', 'b1']));
  await lb.proclaim('b2');
  await lb.resign(); // nobody else campaigns: no leader
  const la2 = await ea.campaign('a3');
  const expected = [null, 'a1', 'a2', 'b1', 'b2', null, 'a3'];
  await eventually(() => assert.deepEqual(observer.values(), expected));
  assert.deepEqual(observer.tokens(), [la.token, la.token, lb.token, lb.token, la2.token]);
  await la2.resign();
  await eventually(() => assert.deepEqual(observer.values(), [...expected, null]));
  await observer.stop();

  // A later observer starts with the leader at that moment.
  await using again = await ea.campaign('a4');
  const iterator = new Election(client, 'watched').observe();
  assert.equal((await iterator.next()).value?.value, 'a4');
  await iterator.return();
  assert.ok(again.leading);
});

test('an aborted observer rejects with the reason', async () => {
  await using client = connect();
  const controller = new AbortController();
  const iterator = new Election(client, 'quiet').observe({ signal: controller.signal });
  assert.deepEqual(await iterator.next(), { done: false, value: undefined }, 'no leader yet');
  const pending = iterator.next();
  const reason = new Error('done');
  controller.abort(reason);
  await assert.rejects(pending, (err) => err === reason);
});

test('no leader when the leader’s key is deleted from outside or its lease is revoked', async () => {
  await using client = connect();
  const observer = await observing(client, 'gone', null);
  await using first = await client.session({ ttl: 10 });
  const l1 = await new Election(client, 'gone', { session: first }).campaign('one');
  await eventually(() => assert.deepEqual(observer.values(), [null, 'one']));
  await client.delete(l1.key);
  await eventually(() => assert.deepEqual(observer.values(), [null, 'one', null]));

  const second = await client.session({ ttl: 10 });
  await new Election(client, 'gone', { session: second }).campaign('two');
  await eventually(() => assert.deepEqual(observer.values(), [null, 'one', null, 'two']));
  await client.revoke(second.lease);
  await eventually(() => assert.deepEqual(observer.values(), [null, 'one', null, 'two', null]));
  await observer.stop();
  await second.close();
});

test('a leader that comes and goes quickly is still seen', async () => {
  await using client = connect();
  const sessions = [
    await client.session({ ttl: 10 }),
    await client.session({ ttl: 10 }),
    await client.session({ ttl: 10 }),
  ];
  const [w, x, y] = sessions.map((session) => new Election(client, 'brief', { session }));
  const observer = await observing(client, 'brief', null);
  const lw = await w!.campaign('w');
  await eventually(() => assert.deepEqual(observer.values(), [null, 'w']));
  const px = x!.campaign('x');
  await eventually(async () => assert.equal((await keysUnder(client, 'brief/')).length, 2));
  const py = y!.campaign('y');
  await eventually(async () => assert.equal((await keysUnder(client, 'brief/')).length, 3));
  // x leads for a moment only: an observer that re-reads the leader after
  // each departure could find y already and skip x.
  await lw.resign();
  const lx = await px;
  await lx.resign();
  const ly = await py;
  await eventually(() => assert.deepEqual(observer.values(), [null, 'w', 'x', 'y']));
  await ly.resign();
  await observer.stop();
  for (const s of sessions) await s.close();
});

test('an observer whose connection breaks still sees every change, in order', async () => {
  const prefix = uniquePrefix('observe');
  await using proxy = await startProxy(etcd.endpoint);
  await using direct = new Etcd({ endpoints: etcd.endpoint, keyPrefix: prefix });
  await using viaProxy = new Etcd({ endpoints: proxy.url, keyPrefix: prefix });
  const sessions = [
    await direct.session({ ttl: 10 }),
    await direct.session({ ttl: 10 }),
    await direct.session({ ttl: 10 }),
  ];
  const [w, x, y] = sessions.map((session) => new Election(direct, 'cut', { session }));
  const observer = await observing(viaProxy, 'cut', null);
  const lw = await w!.campaign('w');
  await eventually(() => assert.deepEqual(observer.values(), [null, 'w']));

  await proxy.refuse(); // the member is gone for the observer
  await lw.proclaim('w2');
  const px = x!.campaign('x');
  await eventually(async () => assert.equal((await keysUnder(direct, 'cut/')).length, 2));
  await lw.resign();
  const lx = await px;
  const py = y!.campaign('y');
  await eventually(async () => assert.equal((await keysUnder(direct, 'cut/')).length, 2));
  await lx.resign();
  const ly = await py;
  await ly.resign(); // and the election is left empty
  assert.deepEqual(observer.values(), [null, 'w'], 'nothing reached the observer meanwhile');
  await proxy.pass();

  await eventually(() => assert.deepEqual(observer.values(), [null, 'w', 'w2', 'x', 'y', null]));
  await observer.stop();
  for (const s of sessions) await s.close();
});
