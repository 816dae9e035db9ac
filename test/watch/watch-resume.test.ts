// Watchers across failures, against real etcd: lost connections, a member restart, a leader
// kill on three members, a compaction while disconnected, a stalled (SIGSTOP) member, and a
// cluster replaced behind the client. Delivered events are checked against etcd's own history:
// nothing lost, nothing twice, order kept.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createClient,
  type Etcd,
  RevisionRegressedError,
  UnavailableError,
  WatchCompactedError,
  type Watcher,
  type WatchStreamOptions,
} from '@etcdkit/client';
import {
  type EtcdCluster,
  type EtcdMember,
  eventually,
  startEtcd,
  uniquePrefix,
} from '@etcdkit/harness';
import { compact } from '../client/helpers.js';
import { assertSameEvents, history, Recorder, since, Writer } from './support.js';
import { tcpProxy } from './tcp-proxy.js';

let one: EtcdCluster;
let three: EtcdCluster;
before(async () => {
  [one, three] = await Promise.all([startEtcd(), startEtcd({ members: 3 })]);
});
after(async () => {
  await Promise.all([one?.close(), three?.close()]);
});

interface Watched {
  watcher: Watcher<string>;
  rec: Recorder<string>;
  /** The first revision the watcher can deliver. */
  from: bigint;
  disconnects: Error[];
  resumes: Array<{ revision: bigint; at: number }>;
}

async function watchPrefix(client: Etcd<string>): Promise<Watched> {
  const watcher = await client.watchdir('');
  const watched: Watched = {
    watcher,
    rec: new Recorder(watcher),
    from: watcher.nextRevision,
    disconnects: [],
    resumes: [],
  };
  watcher.on('disconnected', (e) => watched.disconnects.push(e));
  watcher.on('resumed', (revision) => watched.resumes.push({ revision, at: performance.now() }));
  return watched;
}

/**
 * Stops the writer, writes one last key, waits for the watcher to deliver it,
 * and compares everything delivered with etcd's history of the prefix.
 */
async function checkAgainstHistory(
  w: Watched,
  writer: Writer,
  client: Etcd<string>,
  endpoint: string,
  prefix: string,
): Promise<number> {
  await writer.stop();
  const last = await client.set('zz-last', 'end');
  await eventually(
    () =>
      assert.ok(w.rec.events.at(-1)?.kv.modRevision === last.revision, 'the last write arrives'),
    { timeout: 30_000 },
  );
  const expected = await history(endpoint, prefix, w.from, last.revision, prefix);
  assertSameEvents(w.rec.lines(), expected);
  assert.equal(w.watcher.ended, false, 'the watcher is still running');
  return expected.length;
}

/** A client for `endpoints` whose keys live under `prefix`. */
function connect(
  prefix: string,
  endpoints: string[],
  watch: WatchStreamOptions = {},
): Etcd<string> {
  return createClient({ endpoints, keyPrefix: prefix, codec: 'string', timeout: 3_000, watch });
}

async function followerAndOthers(
  cluster: EtcdCluster,
): Promise<{ follower: EtcdMember; others: EtcdMember[]; leader: EtcdMember }> {
  const leader = await cluster.leader();
  const follower = cluster.members.find((m) => m !== leader)!;
  return { follower, others: cluster.members.filter((m) => m !== follower), leader };
}

describe('resume without loss', () => {
  test('connections cut by a proxy, with writes while disconnected', async (t) => {
    const prefix = uniquePrefix('cut');
    await using proxy = await tcpProxy(one.endpoint);
    await using watching = connect(prefix, [proxy.url]);
    await using writing = connect(prefix, [one.endpoint]);
    const w = await watchPrefix(watching);
    const writer = new Writer(writing);
    for (let round = 0; round < 3; round++) {
      await w.rec.waitFor(w.rec.events.length + 20);
      proxy.refuse(true);
      proxy.cut();
      await writer.advance(20); // committed while the watcher is away
      proxy.refuse(false);
    }
    await writer.advance(20);
    const total = await checkAgainstHistory(w, writer, writing, one.endpoint, prefix);
    assert.ok(w.disconnects.length >= 3, `${w.disconnects.length} disconnects`);
    assert.ok(w.resumes.length >= 3, `${w.resumes.length} resumes`);
    t.diagnostic(
      `${total} events, ${w.disconnects.length} disconnects, ${w.resumes.length} resumes`,
    );
    await w.watcher.cancel();
  });

  test('a member restart (one member)', async (t) => {
    const prefix = uniquePrefix('restart');
    await using watching = connect(prefix, [one.endpoint]);
    await using writing = connect(prefix, [one.endpoint]);
    const w = await watchPrefix(watching);
    const writer = new Writer(writing);
    await w.rec.waitFor(50);
    const member = one.members[0]!;
    const killed = performance.now();
    await member.restart();
    const healthy = since(killed);
    await eventually(() => assert.ok(w.resumes.length >= 1, 'resumed'), { timeout: 30_000 });
    const resumedAfter = Math.round(w.resumes[0]!.at - killed);
    await writer.advance(50);
    const total = await checkAgainstHistory(w, writer, writing, one.endpoint, prefix);
    assert.ok(w.disconnects.length >= 1);
    t.diagnostic(
      `member restart: healthy again after ${healthy} ms, watch resumed ${resumedAfter} ms after the kill; ` +
        `${total} events checked, ${writer.failed} writes failed during the restart`,
    );
    await w.watcher.cancel();
  });

  test('a leader kill on three members', async (t) => {
    const prefix = uniquePrefix('leader');
    const leader = await three.leader();
    const followers = three.members.filter((m) => m !== leader);
    // The watch stream goes to the leader (the first endpoint); writes go to the followers.
    await using watching = connect(prefix, [
      leader.clientUrl,
      ...followers.map((m) => m.clientUrl),
    ]);
    await using writing = connect(
      prefix,
      followers.map((m) => m.clientUrl),
    );
    const w = await watchPrefix(watching);
    const errors: Error[] = [];
    w.watcher.on('error', (e) => errors.push(e));
    const writer = new Writer(writing);
    await w.rec.waitFor(50);
    const killed = performance.now();
    await leader.kill();
    try {
      await eventually(() => assert.ok(w.resumes.length >= 1 || w.watcher.ended, 'resumed'), {
        timeout: 30_000,
      });
      assert.deepEqual(errors, [], 'the watcher did not fail');
      const resumedAfter = Math.round(w.resumes[0]!.at - killed);
      await writer.advance(50);
      const total = await checkAgainstHistory(w, writer, writing, followers[0]!.clientUrl, prefix);
      t.diagnostic(
        `leader kill: watch resumed on another member ${resumedAfter} ms after the kill; ` +
          `${total} events checked, ${writer.failed} writes failed during the election`,
      );
    } finally {
      await writer.stop();
      await w.watcher.cancel();
      leader.start('existing');
      await leader.waitHealthy(30_000);
    }
  });
});

describe('compaction while disconnected', () => {
  test('behind a proxy: reported with its revision, nothing delivered from "now"', async () => {
    const prefix = uniquePrefix('compact-proxy');
    await using proxy = await tcpProxy(one.endpoint);
    await using watching = connect(prefix, [proxy.url]);
    await using writing = connect(prefix, [one.endpoint]);
    const w = await watchPrefix(watching);
    const compacted: WatchCompactedError[] = [];
    w.watcher.on('compacted', (e) => compacted.push(e));
    for (let i = 0; i < 5; i++) await writing.set(`before${i}`, 'x');
    await w.rec.waitFor(5);
    proxy.refuse(true);
    proxy.cut();
    await eventually(() => assert.ok(w.disconnects.length >= 1));
    let last = 0n;
    for (let i = 0; i < 5; i++) last = (await writing.set(`during${i}`, 'x')).revision;
    await compact(one.endpoint, last);
    proxy.refuse(false);
    const err = await w.rec.ended;
    assert.ok(err instanceof WatchCompactedError, String(err));
    assert.equal(err.compactRevision, last);
    assert.deepEqual(compacted, [err]);
    assert.equal(w.rec.events.length, 5, 'nothing after the disconnect was delivered');
    await writing.set('after', 'x');
    assert.equal(w.rec.events.length, 5, 'and nothing later: no silent restart');
  });

  test('a member killed, writes and a compaction on the others, the member restarted', async (t) => {
    const prefix = uniquePrefix('compact-kill');
    const { follower, others } = await followerAndOthers(three);
    await using watching = connect(prefix, [follower.clientUrl]);
    await using writing = connect(
      prefix,
      others.map((m) => m.clientUrl),
    );
    const w = await watchPrefix(watching);
    const compacted: WatchCompactedError[] = [];
    w.watcher.on('compacted', (e) => compacted.push(e));
    for (let i = 0; i < 5; i++) await writing.set(`before${i}`, 'x');
    await w.rec.waitFor(5);
    await follower.kill();
    try {
      await eventually(() => assert.ok(w.disconnects.length >= 1));
      let last = 0n;
      for (let i = 0; i < 5; i++) last = (await writing.set(`during${i}`, 'x')).revision;
      await compact(others[0]!.clientUrl, last);
      const restarted = performance.now();
      follower.start('existing');
      await follower.waitHealthy(30_000);
      const err = await w.rec.ended;
      t.diagnostic(`compaction reported ${since(restarted)} ms after the member was started again`);
      assert.ok(err instanceof WatchCompactedError, String(err));
      assert.equal(err.compactRevision, last);
      assert.deepEqual(compacted, [err]);
      assert.equal(w.rec.events.length, 5, 'nothing after the disconnect was delivered');
    } finally {
      if (!follower.running) follower.start('existing');
      await follower.waitHealthy(30_000);
    }
  });
});

describe('stalls and replaced clusters', () => {
  test('a stalled member (SIGSTOP) is detected by an unanswered progress request, and the watch resumes after SIGCONT', async (t) => {
    const prefix = uniquePrefix('stall');
    const { follower, others } = await followerAndOthers(three);
    await using watching = connect(prefix, [follower.clientUrl], {
      progressInterval: 300,
      progressTimeout: 600,
    });
    await using writing = connect(
      prefix,
      others.map((m) => m.clientUrl),
    );
    const w = await watchPrefix(watching);
    const disconnectedAt: number[] = [];
    w.watcher.on('disconnected', () => disconnectedAt.push(performance.now()));
    for (let i = 0; i < 5; i++) await writing.set(`before${i}`, 'x');
    await w.rec.waitFor(5);
    const paused = performance.now();
    follower.pause();
    let resumedAt = 0;
    try {
      await eventually(() => assert.ok(w.disconnects.length >= 1, 'the stall is detected'), {
        timeout: 15_000,
      });
      const stall = w.disconnects[0]!;
      assert.ok(stall instanceof UnavailableError, String(stall));
      assert.match(stall.message, /stalled/);
      t.diagnostic(`stall detected ${Math.round(disconnectedAt[0]! - paused)} ms after SIGSTOP`);
      for (let i = 0; i < 10; i++) await writing.set(`during${i}`, 'x');
      assert.equal(w.rec.events.length, 5, 'nothing arrives from a frozen member');
    } finally {
      resumedAt = performance.now();
      follower.resume();
    }
    await eventually(() => assert.ok(w.resumes.length >= 1, 'resumed'), { timeout: 30_000 });
    t.diagnostic(`watch resumed ${Math.round(w.resumes[0]!.at - resumedAt)} ms after SIGCONT`);
    const last = await writing.set('zz-last', 'end');
    await eventually(() => assert.equal(w.rec.events.at(-1)?.kv.modRevision, last.revision), {
      timeout: 30_000,
    });
    const expected = await history(others[0]!.clientUrl, prefix, w.from, last.revision, prefix);
    assert.equal(expected.length, 16);
    assertSameEvents(w.rec.lines(), expected);
    await w.watcher.cancel();
  });

  test('a revision that goes backwards (the cluster was replaced) is reported', async () => {
    const prefix = uniquePrefix('regress');
    await using proxy = await tcpProxy(one.endpoint);
    await using fresh = await startEtcd();
    await using watching = connect(prefix, [proxy.url]);
    await using writing = connect(prefix, [one.endpoint]);
    const w = await watchPrefix(watching);
    const errors: Error[] = [];
    w.watcher.on('error', (e) => errors.push(e));
    for (let i = 0; i < 10; i++) await writing.set(`k${i}`, 'x');
    await w.rec.waitFor(10);
    // The same address now leads to a new, empty cluster.
    proxy.target = fresh.endpoint;
    proxy.cut();
    const err = await w.rec.ended;
    assert.ok(err instanceof RevisionRegressedError, String(err));
    assert.equal(err.code, 'ETCDKIT_REVISION_REGRESSED');
    assert.deepEqual(errors, [err]);
    assert.equal(w.rec.events.length, 10);
    assert.equal(w.watcher.ended, true);
  });
});
