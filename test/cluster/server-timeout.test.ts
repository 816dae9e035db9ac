// Writes that etcd itself gives up on (its request timeout) may have been applied.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd, type EtcdError, Op } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 3 });
});
after(() => cluster.close());

/** Whether the member at `url` reports a raft leader, asked of that member alone. */
async function hasLeader(url: string): Promise<boolean> {
  const res = await fetch(`${url}/v3/maintenance/status`, {
    method: 'POST',
    body: '{}',
    signal: AbortSignal.timeout(5_000),
  });
  const leader = ((await res.json()) as { leader?: string }).leader;
  return leader !== undefined && leader !== '0';
}

/** The error a call rejects with; fails the test if it resolves. */
function failure(call: Promise<unknown>): Promise<EtcdError> {
  return call.then(
    () => assert.fail('the call resolved'),
    (err: EtcdError) => err,
  );
}

test('writes etcd times out on are indeterminate, whatever call made them; reads stay determinate', async (t) => {
  const leader = await cluster.leader();
  const followers = cluster.members.filter((m) => m !== leader);
  // Longer than etcd's own request timeout, so etcd answers before the client gives up.
  await using client = new Etcd({
    endpoints: leader.clientUrl,
    keyPrefix: uniquePrefix('server-timeout'),
    timeout: 20_000,
  });
  await client.set('k', 0);
  const { id } = await client.grant(60);
  const writes = (): Array<[string, Promise<EtcdError>]> => [
    ['set', failure(client.set('k', 1))],
    ['delete', failure(client.delete('k'))],
    ['txn', failure(client.txn().success(Op.put('k', 2)).commit())],
    ['setnx', failure(client.setnx('other', 1))],
    ['revoke', failure(client.revoke(id))],
  ];
  for (const m of followers) m.pause();
  try {
    // Proposed while the member still leads: etcd answers "request timed out".
    const whileLeading = writes();
    // Once it has stepped down for lack of a quorum, proposals wait for a
    // leader until etcd's deadline: it answers "context deadline exceeded".
    await eventually(async () => assert.equal(await hasLeader(leader.clientUrl), false), {
      timeout: 15_000,
    });
    const withoutLeader = [...writes(), ['grant', failure(client.grant(60))] as const];
    const read = failure(client.get('k', { timeout: 8_000 }));
    const seen = new Set<string>();
    for (const [name, call] of [...whileLeading, ...withoutLeader]) {
      const err = await call;
      seen.add(err.message);
      assert.equal(err.indeterminate, true, `${name}: ${err.name} ${err.message}`);
      assert.equal(err.retryable, false, name);
    }
    t.diagnostic(`etcd answered: ${[...seen].join(' | ')}`);
    assert.ok(seen.has('context deadline exceeded'), 'the gateway-deadline answer was met');
    const readError = await read;
    assert.equal(readError.indeterminate, false, `get: ${readError.message}`);
    assert.equal(readError.retryable, true, 'get');
  } finally {
    for (const m of followers) m.resume();
  }
});
