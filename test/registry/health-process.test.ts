// Health checks and the life of a process: deregistering or closing stops the
// check (the in-flight one is aborted, no later one runs) and leaves nothing
// running, so the process exits by itself; a killed instance disappears.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import { type EtcdCluster, eventually, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { Registry, type ServiceInstance } from '@etcdkit/registry';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

interface Child {
  child: ChildProcess;
  lines: AsyncIterator<string>;
  exited: Promise<unknown[]>;
}

function startChild(keyPrefix: string, mode: string, ttl = 30): Child {
  const script = new URL('./health-instance-process.js', import.meta.url);
  const config = { endpoints: [etcd.endpoint], keyPrefix, mode, ttl };
  const child = spawn(process.execPath, [script.pathname, JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return { child, lines, exited };
}

async function nextMessage(child: Child): Promise<Record<string, unknown>> {
  const { value, done } = await child.lines.next();
  assert.ok(!done, 'the instance process ended early');
  return JSON.parse(value) as Record<string, unknown>;
}

for (const mode of ['deregister', 'close']) {
  test(`${mode} stops the health check and the process exits by itself`, async () => {
    const keyPrefix = uniquePrefix(`registry-health-${mode}`);
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
    const registry = new Registry(client);
    const set = await registry.discover('api');
    // The instance may come and go quickly: listen before it starts.
    const added = new Promise<ServiceInstance>((resolve) => set.once('added', resolve));
    const child = startChild(keyPrefix, mode);
    try {
      assert.ok((await nextMessage(child)).registered);
      assert.equal((await added).healthy, true);
      const report = await nextMessage(child);
      assert.equal(report.abortedBy, 'DeregisteredError', 'the in-flight check was aborted');
      assert.equal(report.checksLater, report.checks, 'no check ran after deregistering');
      // A timer, socket or listener left behind would keep the process alive.
      const [code, signal] = await Promise.race([
        child.exited,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('the process did not exit')), 30_000).unref(),
        ),
      ]);
      assert.deepEqual([code, signal], [0, null]);
      await eventually(() => assert.equal(set.get('checked'), undefined));
    } finally {
      child.child.kill('SIGKILL');
      await registry.close();
    }
  });
}

test('an instance with a health check killed with SIGKILL disappears from consumers', async () => {
  const keyPrefix = uniquePrefix('registry-health-kill');
  await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix });
  const registry = new Registry(client);
  const set = await registry.discover('api');
  const child = startChild(keyPrefix, 'hold', 2);
  try {
    const lease = BigInt(String((await nextMessage(child)).registered));
    await eventually(() => assert.equal(set.get('checked')?.healthy, true));
    child.child.kill('SIGKILL');
    await child.exited;
    await eventually(() => assert.equal(set.get('checked'), undefined), { timeout: 30_000 });
    assert.equal(await client.timetolive(lease), undefined, 'its lease expired');
    assert.equal(set.pick(), undefined);
  } finally {
    child.child.kill('SIGKILL');
    await registry.close();
  }
});
