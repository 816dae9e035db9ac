/**
 * Service discovery: three "greeter" HTTP services register themselves; a
 * client discovers them and spreads requests round-robin over the live set.
 * One service is killed (SIGKILL): it disappears from the set when its lease
 * expires. A new one starts and appears; another shuts down cleanly and
 * disappears at once.
 *
 *   ETCD_ENDPOINTS=http://127.0.0.1:2379 node dist/main.js
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createClient } from '@etcdkit/client';
import { Registry } from '@etcdkit/registry';

const endpoints = process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379';
const prefix = `/examples/services-${randomBytes(3).toString('hex')}`;
const log = (line: string) => console.log(`[discovery] ${line}`);
const servicePath = fileURLToPath(new URL('./service.js', import.meta.url));

const running = new Map<string, ChildProcess>();
function start(id: string): Promise<void> {
  const child = spawn(process.execPath, [servicePath], {
    env: { ...process.env, ETCD_ENDPOINTS: endpoints, INSTANCE_ID: id, REGISTRY_PREFIX: prefix },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  running.set(id, child);
  return new Promise((resolve) => {
    createInterface({ input: child.stdout! }).once('line', () => resolve());
  });
}

const etcd = createClient({ endpoints: endpoints.split(',') });
const registry = new Registry(etcd, { prefix });
const greeters = await registry.discover('greeter');
greeters.on('added', (i) => log(`+ ${i.id} at ${i.host} (${i.healthy ? 'healthy' : 'unhealthy'})`));
greeters.on('removed', (i) => log(`- ${i.id} left the set`));

/** Sends `count` requests, each to the next instance round-robin, and tallies who answered. */
async function spread(count: number): Promise<Record<string, number>> {
  const answers: Record<string, number> = {};
  for (let n = 0; n < count; n++) {
    const target = greeters.pick('round-robin');
    if (!target) continue;
    const text = await fetch(`http://${target.host}/`)
      .then((r) => r.text())
      .catch(() => {
        greeters.noteError(target); // enough of these and it is passed over for a while
        return 'unreachable';
      });
    const who = text.trim().replace('hello from ', '');
    answers[who] = (answers[who] ?? 0) + 1;
  }
  return answers;
}

const until = async (what: string, check: () => boolean, ms = 20_000) => {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Date.now() - started;
};

let failed = false;
try {
  await Promise.all(['greeter-a', 'greeter-b', 'greeter-c'].map(start));
  await until('three instances are seen', () => greeters.size === 3);
  log(`9 requests spread over the set: ${JSON.stringify(await spread(9))}`);

  log('killing greeter-b with SIGKILL: its 2 s lease must expire');
  running.get('greeter-b')?.kill('SIGKILL');
  const gone = await until('greeter-b leaves the set', () => !greeters.get('greeter-b'));
  log(`greeter-b left the set ${gone} ms after the kill`);
  const after = await spread(6);
  log(`6 requests after the kill: ${JSON.stringify(after)}`);
  if ('greeter-b' in after || 'unreachable' in after) failed = true;

  await start('greeter-d');
  await until('greeter-d joins the set', () => Boolean(greeters.get('greeter-d')));
  log('greeter-c shuts down cleanly (SIGTERM): it deregisters at once');
  const stopped = Date.now();
  running.get('greeter-c')?.kill('SIGTERM');
  await until('greeter-c leaves the set', () => !greeters.get('greeter-c'));
  log(`greeter-c left the set ${Date.now() - stopped} ms after SIGTERM`);
  const final = await spread(6);
  log(`6 requests now: ${JSON.stringify(final)}`);
  if (Object.keys(final).sort().join() !== 'greeter-a,greeter-d') failed = true;
} catch (err) {
  log(`FAILED: ${(err as Error).message}`);
  failed = true;
} finally {
  for (const child of running.values()) child.kill('SIGKILL');
  await greeters.close();
  await registry.close();
  await etcd.rmdir(`${prefix}/`).catch(() => undefined);
  await etcd.close();
}
if (failed) {
  log('FAILED: a request went to an instance that was gone');
  process.exit(1);
}
log('every request reached a live instance');
