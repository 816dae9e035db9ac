/**
 * Leader election: three replicas each live in `election.run()`; the leader
 * does the work (ticks). The leader process is killed; once its lease
 * expires, another replica's run() is elected and carries on from the last
 * tick. An observer prints every change of leader as it happens.
 *
 *   ETCD_ENDPOINTS=http://127.0.0.1:2379 node dist/main.js
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createClient } from '@etcdkit/client';
import { Election } from '@etcdkit/election';

const endpoints = process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379';
const ttl = 2;
const prefix = `examples/election-${randomBytes(3).toString('hex')}/`;
const log = (line: string) => console.log(`[election] ${line}`);
const replicaPath = fileURLToPath(new URL('./replica.js', import.meta.url));

const etcd = createClient({ endpoints: endpoints.split(','), keyPrefix: prefix });
const observer = new AbortController();
const leaders: string[] = [];
const observing = (async () => {
  try {
    for await (const leader of new Election(etcd, 'leader').observe({ signal: observer.signal })) {
      if (!leader) {
        log('observer: no leader');
        continue;
      }
      if (leaders.at(-1) !== leader.value) {
        leaders.push(leader.value);
        log(`observer: the leader is now ${leader.value} (token ${leader.token})`);
      }
    }
  } catch (err) {
    if (!observer.signal.aborted) throw err;
  }
})();

const replicas = new Map<string, ChildProcess>();
let elected = 0;
let firstLeader = '';
let killedAt = 0;
const done = new Promise<void>((resolve) => {
  for (const name of ['replica-a', 'replica-b', 'replica-c']) {
    const child = spawn(process.execPath, [replicaPath], {
      env: {
        ...process.env,
        ETCD_ENDPOINTS: endpoints,
        REPLICA_NAME: name,
        EXAMPLE_PREFIX: prefix,
        SESSION_TTL: String(ttl),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    replicas.set(name, child);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const event = JSON.parse(line) as {
        event: string;
        tick?: number;
        token?: string;
        reason?: string;
      };
      if (event.event === 'stepped-down') log(`${name} stepped down (${event.reason})`);
      if (event.event === 'elected') {
        elected++;
        if (elected === 1) firstLeader = name;
        const after = killedAt ? ` (${Date.now() - killedAt} ms after the old leader died)` : '';
        log(`${name} leads with token ${event.token}${after}`);
      }
      if (event.event === 'tick' && event.tick !== undefined) {
        if (event.tick % 5 === 0) log(`${name} did tick ${event.tick}`);
        if (name === firstLeader && event.tick === 10 && !killedAt) {
          log(`killing the leader ${name} (SIGKILL); its ${ttl} s lease must expire first`);
          killedAt = Date.now();
          child.kill('SIGKILL');
        }
        if (elected >= 2 && event.tick >= 20) resolve();
      }
    });
  }
});

let timer: NodeJS.Timeout | undefined;
const timedOut = new Promise<void>((resolve) => {
  timer = setTimeout(() => {
    log('FAILED: no second leader took over in time');
    process.exitCode = 1;
    resolve();
  }, 30_000);
});
await Promise.race([done, timedOut]);
clearTimeout(timer);

// SIGTERM ends each replica's run(): the leader stops its work, then resigns.
await Promise.all(
  [...replicas.values()].map(async (child) => {
    if (child.exitCode !== null || child.signalCode !== null) return; // the killed one
    const closed = once(child, 'close'); // exited, and all it printed was read
    child.kill('SIGTERM');
    await closed;
  }),
);
observer.abort();
await observing;
const ticks = (await etcd.get('ticks'))?.value;
await etcd.rmdir('');
await etcd.close();

log(`leaders seen by the observer, in order: ${leaders.join(' → ')}; last tick ${String(ticks)}`);
if (process.exitCode || leaders.length < 2 || typeof ticks !== 'number' || ticks < 20) {
  log('FAILED');
  process.exit(1);
}
log('one leader at a time; the work went on after the leader died');
