// Mutual exclusion across processes, judged by a fenced resource: three worker
// processes with five lockers each contend for one lock. Then a holder is frozen
// (SIGSTOP) past its session TTL, and a holder crashes (SIGKILL).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type EtcdCluster, eventually, startEtcd } from '@etcdkit/harness';
import type { Section } from './fence-checker.js';
import { expectQueue, since } from './helpers.js';
import { Scenario, type WorkerProcess } from './workers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

/** Waits for the first section `worker` enters from now on, and acts on it before it is answered. */
function onNextEntry(
  scenario: Scenario,
  worker: WorkerProcess,
  act: (section: Section) => void,
): Promise<{ section: Section; at: number }> {
  return new Promise((resolve) => {
    const listener = (section: Section) => {
      if (section.worker !== worker.id) return;
      scenario.checker.off('entered', listener);
      act(section);
      resolve({ section, at: performance.now() });
    };
    scenario.checker.on('entered', listener);
  });
}

/**
 * Sections other than the frozen one whose session was lost. With a 2 s TTL on
 * a busy machine a worker may miss its keepalives; fencing must contain that
 * too, and assertSafe allows exactly that, so it is printed, not failed.
 */
function otherLosses(scenario: Scenario, frozen: bigint): string {
  const others = scenario.sessionLosses().filter((token) => token !== frozen);
  return others.length === 0 ? 'none' : `tokens ${others.join(', ')}`;
}

/** Waits for the first section entered after `token`, by another worker. */
async function nextHolder(scenario: Scenario, token: bigint, timeout = 30_000): Promise<Section> {
  return eventually(
    () => {
      const next = [...scenario.checker.sections.values()].find((s) => s.token > token);
      assert.ok(next, `no section entered after token ${token}`);
      return next;
    },
    { timeout, interval: 20 },
  );
}

test('15 lockers in 3 processes: no overlapping sections, strictly increasing tokens', async (t) => {
  await using scenario = await Scenario.start({ label: 'safety', endpoints: etcd.endpoints });
  const start = performance.now();
  await scenario.waitForSections(60);
  await scenario.stop();
  const sections = scenario.checker.sections.size;
  t.diagnostic(
    `${sections} sections in ${since(start)} ms; ${scenario.writes.length} fenced etcd writes; ` +
      `worker problems: ${scenario.problemSummary()}`,
  );
  assert.deepEqual(scenario.checker.overlaps, []);
  assert.deepEqual(scenario.checker.refused, []);
  scenario.assertSafe();
  // Every process took part, with several lockers each.
  for (const worker of scenario.workers) {
    const lockers = new Set(worker.sections.map((s) => s.id.split('.')[1]));
    assert.ok(lockers.size > 1, `${worker.id} ran sections from ${lockers.size} lockers`);
  }
  assert.equal(scenario.writes.length, scenario.reports().length);
  await expectQueue(scenario.client, scenario.name, []);
});

test('a holder frozen past its TTL is overtaken, and fencing refuses it when it wakes', async (t) => {
  await using scenario = await Scenario.start({
    label: 'pause',
    endpoints: etcd.endpoints,
    ttl: 2,
  });
  await scenario.waitForSections(15);
  const frozen = scenario.workers[0]!;
  // Freeze the worker the moment the checker accepts its next enter: it holds the lock
  // and is inside its section.
  const paused = await onNextEntry(scenario, frozen, () => frozen.pause());
  const token = paused.section.token;
  const next = await nextHolder(scenario, token);
  t.diagnostic(
    `the lock passed from the frozen holder (token ${token}) to ${next.worker} ` +
      `${Math.round(next.enteredAt - paused.at)} ms after SIGSTOP (session TTL 2 s)`,
  );
  assert.notEqual(next.worker, frozen.id);
  await scenario.waitForSections(scenario.checker.completed + 10);
  const resumedAt = performance.now();
  frozen.resume();
  const report = await eventually(
    () => {
      const found = frozen.sections.find((s) => BigInt(s.token) === token);
      assert.ok(found, 'the frozen section is reported after SIGCONT');
      return found;
    },
    { timeout: 30_000 },
  );
  t.diagnostic(
    `the woken holder reported ${since(resumedAt)} ms after SIGCONT: ${JSON.stringify(report)}`,
  );
  assert.equal(report.entered, true);
  assert.equal(report.written, false, 'etcd refused the guarded write of the lost lock');
  assert.equal(report.exited, false, 'the checker refused the lower token');
  assert.equal(report.lost, 'SessionExpiredError', 'lock.signal aborted with the session');
  assert.equal(report.release, 'LockNotHeldError');
  // The woken process carries on with a new session, as safely as the others.
  await eventually(
    () =>
      assert.ok(
        frozen.sections.some((s) => BigInt(s.token) > next.token && s.exited),
        'the woken worker locks again',
      ),
    { timeout: 30_000 },
  );
  await scenario.stop();
  t.diagnostic(`worker problems: ${scenario.problemSummary()}`);
  t.diagnostic(`other sessions lost on the way: ${otherLosses(scenario, token)}`);
  assert.ok(scenario.checker.overlaps.some((o) => o.open === token && o.entering === next.token));
  assert.ok(scenario.checker.refused.some((r) => r.token === token));
  scenario.assertSafe([token]);
  await expectQueue(scenario.client, scenario.name, []);
});

test('a crashed holder (SIGKILL) loses the lock when its lease expires, and the queue moves on', async (t) => {
  await using scenario = await Scenario.start({
    label: 'crash',
    endpoints: etcd.endpoints,
    ttl: 2,
  });
  await scenario.waitForSections(15);
  const victim = scenario.workers[1]!;
  const killed = await onNextEntry(scenario, victim, () => victim.killNow());
  const token = killed.section.token;
  const next = await nextHolder(scenario, token);
  t.diagnostic(
    `the lock passed from the killed holder (token ${token}) to ${next.worker} ` +
      `${Math.round(next.enteredAt - killed.at)} ms after SIGKILL (session TTL 2 s)`,
  );
  await scenario.waitForSections(scenario.checker.completed + 10);
  await scenario.stop();
  t.diagnostic(`worker problems: ${scenario.problemSummary()}`);
  t.diagnostic(`other sessions lost on the way: ${otherLosses(scenario, token)}`);
  scenario.assertSafe([token]);
  // The killed process's keys went with its lease; the others released theirs.
  await expectQueue(scenario.client, scenario.name, []);
});
