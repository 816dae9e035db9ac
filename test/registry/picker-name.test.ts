// A picker that does not exist is the caller's mistake: InvalidArgumentError naming the known
// pickers, thrown before the pick does anything, and the set keeps picking as before.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd, InvalidArgumentError } from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { type Picker, type PickStrategy, pickerFor, Registry } from '@etcdkit/registry';

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

const KNOWN = /round-robin.*random.*weighted/;

function assertInvalidPicker(call: () => unknown, what: RegExp): void {
  assert.throws(call, (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError, `InvalidArgumentError, got ${String(err)}`);
    assert.match(err.message, what);
    assert.match(err.message, KNOWN, 'the message lists the known pickers');
    return true;
  });
}

test('set.pick() with an unknown picker name or a non-picker throws InvalidArgumentError', async () => {
  const registry = new Registry(client, { prefix: uniquePrefix('registry-picker'), ttl: 30 });
  await registry.register('api', { id: 'a', address: '127.0.0.1', port: 80 });
  await registry.register('api', { id: 'b', address: '127.0.0.1', port: 81 });
  await using set = await registry.discover('api');
  assert.equal(set.pick()?.id, 'a');
  assertInvalidPicker(() => set.pick('nope' as PickStrategy), /"nope"/);
  assertInvalidPicker(() => set.pick('Random' as PickStrategy), /"Random"/);
  assertInvalidPicker(() => set.pick({} as Picker), /picker/);
  assertInvalidPicker(() => set.pick(null as unknown as Picker), /picker/);
  // Nothing was remembered for the bad name: round-robin carries on, and the name stays unknown.
  assert.equal(set.pick()?.id, 'b');
  assertInvalidPicker(() => set.pick('nope' as PickStrategy), /"nope"/);
  await registry.close();
});

test('pickerFor() with an unknown name throws InvalidArgumentError', () => {
  assertInvalidPicker(() => pickerFor('nope' as PickStrategy), /"nope"/);
  assert.equal(typeof pickerFor('weighted').pick, 'function');
});
