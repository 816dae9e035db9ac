// Auth token expiry combined with a member fault. Tokens live one second on each member and a
// member only extends the ones it is shown, so when the client fails over, the member it lands
// on has long forgotten its token: the client must authenticate again and go on, for calls,
// the watch (HTTP with auth) and the session's keepalives alike.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@etcdkit/client';
import { findEtcdctl, uniquePrefix } from '@etcdkit/harness';
import { checkWatch, WatchLog } from './checks.js';
import { type ProxiedCluster, startProxiedCluster } from './cluster.js';
import { Scenario } from './scenario.js';
import { ms, readAll } from './workload.js';

/**
 * A member that has not been shown a token forgets it one TTL (1 s) after it was issued, on
 * the next tick of its once-a-second expiry sweep: 2.5 s is past both.
 */
const TOKEN_FORGOTTEN_MS = 2_500;

let pc: ProxiedCluster;

function etcdctl(...args: string[]): string {
  return execFileSync(
    findEtcdctl(),
    [`--endpoints=${pc.cluster.endpoints.join(',')}`, '--user=root:rootpw', ...args],
    {
      encoding: 'utf8',
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

before(async () => {
  pc = await startProxiedCluster({
    members: 3,
    flags: ['--auth-token=simple', '--auth-token-ttl=1'],
  });
  // Before auth is enabled, etcdctl ignores the user it is given.
  etcdctl('user', 'add', 'root:rootpw');
  etcdctl('user', 'add', 'alice:alicepw');
  etcdctl('role', 'add', 'app');
  etcdctl('role', 'grant-permission', 'app', 'readwrite', '--prefix=true', 'app/');
  etcdctl('user', 'grant-role', 'alice', 'app');
  etcdctl('auth', 'enable');
});
after(async () => {
  await pc?.close();
});

test('token expired on the member the client fails over to: it re-authenticates and goes on', async (t) => {
  const first = await pc.leaderIndex();
  // The client reads the password each time it authenticates: counting the
  // reads counts its authentications, whatever the transport.
  let authentications = 0;
  const alice = {
    user: 'alice',
    get password() {
      authentications++;
      return 'alicepw';
    },
    // A refresh long after the test: only etcd's refusal can make the client renew its token.
    refreshInterval: 3_600_000,
  };
  const s = await Scenario.begin({
    label: 'auth',
    keyPrefix: uniquePrefix('auth').replace(/^\//, 'app/'),
    endpoints: pc.endpointsFrom(first),
    direct: pc.cluster.endpoints,
    timeout: 2_000,
    sessionTtl: 5,
    auth: alice,
    checkerAuth: { user: 'root', password: 'rootpw' },
  });
  const authenticated = () => authentications;
  const before = authenticated();
  await sleep(TOKEN_FORGOTTEN_MS);
  s.fault();
  await pc.kill(first);
  await s.writesRecovered();
  await sleep(TOKEN_FORGOTTEN_MS); // past the token TTL on the member that is down too
  await pc.start(first);
  s.healed();
  t.diagnostic(
    `auth expiry: ${authenticated() - before} authentications after the fault ` +
      `(member ${first} was killed)`,
  );
  await s.finish(t, 'auth token expiry');
  assert.ok(authenticated() > before, 'the fault made the client authenticate again');
});

test('a watch alone fails over to a member that forgot its token: it re-authenticates, no gap', async (t) => {
  const prefix = uniquePrefix('auth-watch').replace(/^\//, 'app/');
  const first = await pc.followerIndex();
  // The client under test only watches: no other call can renew its token for the watch.
  await using client = createClient({
    endpoints: pc.endpointsFrom(first),
    keyPrefix: prefix,
    codec: 'string',
    timeout: 2_000,
    auth: { user: 'alice', password: 'alicepw', refreshInterval: 3_600_000 },
  });
  await using writer = createClient({
    endpoints: pc.cluster.endpoints.filter((_, i) => i !== first),
    keyPrefix: prefix,
    codec: 'string',
    auth: { user: 'root', password: 'rootpw' },
  });
  await using watcher = await client.watchdir('w/');
  const log = new WatchLog(watcher);
  for (let i = 0; i < 10; i++) await writer.set(`w/${String(i).padStart(3, '0')}`, `v${i}`);
  await sleep(TOKEN_FORGOTTEN_MS);
  const faultAt = performance.now();
  await pc.kill(first);
  for (let i = 10; i < 20; i++) await writer.set(`w/${String(i).padStart(3, '0')}`, `v${i}`);
  try {
    const problems = await checkWatch(log, await readAll(writer, 'w/'));
    t.diagnostic(
      `auth expiry (watch only): resumed after ${ms(log.resumedAfter(faultAt), 'no resume')}` +
        `${log.error ? `; ended with ${(log.error as Error).message}` : ''}`,
    );
    assert.deepEqual(problems, []);
  } finally {
    await pc.start(first);
  }
});
