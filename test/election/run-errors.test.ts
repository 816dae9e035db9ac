// election.run() when things fail: a work that throws (run() rejects, or
// onWorkError takes the error and the loop goes on), campaigns that fail while
// etcd cannot be reached (retried until it can), a callback that throws, and
// bad input.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd, EtcdError, InvalidArgumentError } from '@etcdkit/client';
import { AlreadyCampaigningError, Election, type Leadership } from '@etcdkit/election';
import {
  type EtcdCluster,
  eventually,
  startEtcd,
  startProxy,
  uniquePrefix,
} from '@etcdkit/harness';
import { aborted, RecordedRun } from './recorded-run.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

function connect(): Etcd {
  return new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('run-errors') });
}

test('a work that throws: run() hands over, then rejects with the error', async () => {
  await using client = connect();
  const election = new Election(client, 'boom');
  const boom = new Error('boom');
  const run = new RecordedRun(election, 'w', async () => {
    throw boom;
  });
  await assert.rejects(run.done, (err) => err === boom);
  assert.deepEqual(run.events, ['started 1', 'stopped 1']);
  assert.deepEqual(await election.candidates(), []);
});

test('with onWorkError, a work that throws is reported before the hand-over, and the loop goes on', async () => {
  await using client = connect();
  const election = new Election(client, 'flaky');
  const reported: string[] = [];
  const run = new RecordedRun(
    election,
    'w',
    async (leadership, term) => {
      if (term === 1) throw new Error('first term failed');
      await aborted(leadership.signal);
    },
    {
      onWorkError: async (err: unknown, leadership: Leadership) => {
        // Reported while the key is still there: nobody else leads yet.
        const line = await election.candidates();
        reported.push(
          `${(err as Error).message}, key ${line[0]?.key === leadership.key ? 'kept' : 'gone'}`,
        );
        run.events.push('work error');
      },
    },
  );
  await eventually(() =>
    assert.deepEqual(run.events, ['started 1', 'work error', 'stopped 1', 'started 2']),
  );
  assert.deepEqual(reported, ['first term failed, key kept']);
  assert.ok(run.terms[1]!.token > run.terms[0]!.token);
  await run.stop();
  assert.deepEqual(await election.candidates(), []);

  // An onWorkError that throws stops the loop with its own error.
  const giveUp = new Error('give up');
  const strict = new RecordedRun(
    election,
    'w',
    async () => {
      throw new Error('failed');
    },
    {
      onWorkError: (err: unknown) => {
        throw Object.assign(giveUp, { cause: err });
      },
    },
  );
  await assert.rejects(strict.done, (err) => err === giveUp);
  assert.deepEqual(strict.events, ['started 1', 'stopped 1']);
  assert.deepEqual(await election.candidates(), []);
});

test('an error thrown once the signal aborted is the work stopping, not failing', async () => {
  await using client = connect();
  const election = new Election(client, 'aborting');
  const run = new RecordedRun(election, 'w', async (leadership) => {
    await aborted(leadership.signal);
    leadership.signal.throwIfAborted();
  });
  await eventually(() => assert.deepEqual(run.events, ['started 1']));
  await run.stop(new Error('stop'));
  assert.deepEqual(run.events, ['started 1', 'stopped 1']);
});

test('a callback that throws stops the loop: run() hands over and rejects with its error', async () => {
  await using client = connect();
  const election = new Election(client, 'callback');
  const bug = new Error('bug in onNewLeader');
  const run = new RecordedRun(election, 'w', (leadership) => aborted(leadership.signal), {
    onNewLeader: (leader) => {
      if (leader) throw bug;
    },
  });
  await assert.rejects(run.done, (err) => err === bug);
  assert.deepEqual(await election.candidates(), []);
});

test('campaigns that fail while etcd cannot be reached are retried until it can be', async () => {
  await using proxy = await startProxy(etcd.endpoint);
  await proxy.refuse();
  await using client = new Etcd({
    endpoints: proxy.url,
    keyPrefix: uniquePrefix('run-errors'),
    timeout: 1_000,
  });
  const election = new Election(client, 'unreachable');
  const run = new RecordedRun(election, 'w', (leadership) => aborted(leadership.signal));
  await eventually(() => assert.ok(run.errors.length >= 3, `${run.errors.length} errors`), {
    timeout: 20_000,
  });
  assert.deepEqual(run.events, [], 'nothing led meanwhile');
  for (const err of run.errors) assert.ok(err instanceof EtcdError, String(err));

  await proxy.pass();
  await eventually(() => assert.deepEqual(run.events, ['started 1']), { timeout: 30_000 });
  assert.equal((await election.leader())?.key, run.terms[0]!.key);
  await run.stop();
  assert.deepEqual(await election.candidates(), []);
});

test('bad input, a second run on the same session, and unknown options are refused', async () => {
  await using client = connect();
  const election = new Election(client, 'bad');
  const work = async () => undefined;
  const refused = [
    election.run(42 as unknown as string, work),
    election.run('v', 'work' as never),
    election.run('v', work, { signal: {} as AbortSignal }),
    election.run('v', work, { retryDelay: -1 }),
    election.run('v', work, { retryDelay: 500, maxRetryDelay: 100 }),
    election.run('v', work, { maxRetryDelay: Number.NaN }),
    election.run('v', work, { onNewLeader: 'log' as never }),
    election.run('v', work, { onStartedLeading: 1 as never }),
    election.run('v', work, { sginal: undefined } as never),
  ];
  for (const [i, p] of refused.entries()) await assert.rejects(p, InvalidArgumentError, `#${i}`);
  assert.deepEqual(await election.candidates(), [], 'nothing was written');

  // Two runs on one session would share one key: the second is refused.
  const first = new RecordedRun(election, 'one', (leadership) => aborted(leadership.signal));
  await eventually(() => assert.deepEqual(first.events, ['started 1']));
  await assert.rejects(
    election.run('two', work, { signal: AbortSignal.timeout(30_000) }),
    AlreadyCampaigningError,
  );
  assert.ok(first.terms[0]!.leading);
  await first.stop();
});
