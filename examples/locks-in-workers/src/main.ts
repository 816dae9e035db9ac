/**
 * Locks in workers: several worker processes add to one counter in etcd, each
 * update under one Mutex. One worker is frozen (SIGSTOP) while it holds the
 * lock, longer than its lease lives; the others carry on, and when it wakes
 * its fenced write is refused. In the end the counter equals the number of
 * updates: nothing lost, nothing applied twice.
 *
 *   ETCD_ENDPOINTS=http://127.0.0.1:2379 node dist/main.js
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createClient } from '@etcdkit/client';

const endpoints = process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379';
const workers = Number(process.env.WORKERS ?? 3);
const updates = Number(process.env.UPDATES ?? 10);
const ttl = 2;
const prefix = `examples/locks-${randomBytes(3).toString('hex')}/`;
const log = (line: string) => console.log(`[locks] ${line}`);

const workerPath = fileURLToPath(new URL('./worker.js', import.meta.url));
let paused = false;
const fenced: string[] = [];
const running = Array.from({ length: workers }, (_, i) => {
  const name = `worker-${i + 1}`;
  const child = spawn(process.execPath, [workerPath], {
    env: {
      ...process.env,
      ETCD_ENDPOINTS: endpoints,
      WORKER_NAME: name,
      UPDATES: String(updates),
      EXAMPLE_PREFIX: prefix,
      SESSION_TTL: String(ttl),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    const event = JSON.parse(line) as { event: string; token?: string; value?: number };
    if (event.event === 'locked' && i === 0 && !paused) {
      // Freeze the first worker while it holds the lock, for longer than its lease.
      paused = true;
      child.kill('SIGSTOP');
      log(
        `${name} holds the lock (token ${event.token}) and is frozen for ${ttl * 2} s, past its ${ttl} s lease`,
      );
      setTimeout(() => {
        log(`${name} wakes up`);
        child.kill('SIGCONT');
      }, ttl * 2000);
      return;
    }
    if (event.event === 'wrote')
      log(`${name} wrote counter = ${event.value} under token ${event.token}`);
    if (event.event === 'fenced') {
      fenced.push(name);
      log(`${name}: fenced write refused — its lock (token ${event.token}) was lost while frozen`);
    }
  });
  return new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
});

const codes = await Promise.all(running);
const etcd = createClient({ endpoints: endpoints.split(','), keyPrefix: prefix });
const counter = (await etcd.get('counter'))?.value;
await etcd.rmdir('');
await etcd.close();

const expected = workers * updates;
log(`counter = ${String(counter)}, expected ${expected}; fenced writes refused: ${fenced.length}`);
if (codes.some((c) => c !== 0) || counter !== expected) {
  log('FAILED: an update was lost or applied twice');
  process.exit(1);
}
log('no update lost, none applied twice');
