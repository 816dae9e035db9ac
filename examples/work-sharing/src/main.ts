/**
 * Work sharing: three replicas join a group and split twelve shards between
 * them by rendezvous hashing, each shard owned by exactly one replica. One
 * replica is killed (SIGKILL); once its lease expires, its shards, and only
 * its shards, move to the two survivors.
 *
 *   ETCD_ENDPOINTS=http://127.0.0.1:2379 node dist/main.js
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const endpoints = process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379';
const prefix = `examples/work-sharing-${randomBytes(3).toString('hex')}/`;
const ttl = 5;
const shards = Array.from({ length: 12 }, (_, i) => `shard-${i}`);
const names = ['replica-a', 'replica-b', 'replica-c'];
const log = (line: string) => console.log(`[work-sharing] ${line}`);
const replicaPath = fileURLToPath(new URL('./replica.js', import.meta.url));

/** What each replica last said it owns, and which members it counted. */
const owns = new Map<string, { shards: string[]; members: string[] }>();
const replicas = new Map<string, ChildProcess>();
for (const name of names) {
  const child = spawn(process.execPath, [replicaPath], {
    env: {
      ...process.env,
      ETCD_ENDPOINTS: endpoints,
      REPLICA_NAME: name,
      EXAMPLE_PREFIX: prefix,
      SESSION_TTL: String(ttl),
      SHARDS: shards.join(','),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  replicas.set(name, child);
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const event = JSON.parse(line) as { event: string; shards?: string[]; members?: string[] };
    if (event.event === 'owns') owns.set(name, { shards: event.shards!, members: event.members! });
    if (event.event === 'lost') log(`${name} lost its membership`);
  });
}

/** True when `alive` all count exactly each other, and own every shard once between them. */
function settled(alive: string[]): boolean {
  const all: string[] = [];
  for (const name of alive) {
    const o = owns.get(name);
    if (o?.members.join() !== alive.join()) return false;
    all.push(...o.shards);
  }
  return all.length === shards.length && new Set(all).size === shards.length;
}

async function until(what: string, check: () => boolean, ms = 60_000): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Date.now() - started;
}

const show = (name: string) => `${name}: ${owns.get(name)?.shards.join(' ')}`;
let ok = false;
try {
  await until('the three replicas share the shards', () => settled(names));
  for (const name of names) log(show(name));

  const victim = 'replica-b';
  const before = new Map(names.map((n) => [n, owns.get(n)!.shards]));
  log(`killing ${victim} (SIGKILL): its ${ttl} s lease must expire first`);
  replicas.get(victim)?.kill('SIGKILL');
  const survivors = names.filter((n) => n !== victim);
  const took = await until('the survivors share the shards', () => settled(survivors));
  for (const name of survivors) log(show(name));
  log(`the survivors took over ${took} ms after the kill`);

  // Only the dead replica's shards moved: each survivor kept all it had.
  const kept = survivors.every((n) => before.get(n)!.every((s) => owns.get(n)!.shards.includes(s)));
  const moved = before.get(victim)!;
  log(`${moved.length} shards moved (${moved.join(' ')}); the survivors kept theirs: ${kept}`);
  ok = kept;
} catch (err) {
  log(`FAILED: ${(err as Error).message}`);
  for (const name of names) {
    const o = owns.get(name);
    log(
      o
        ? `${name} last counted ${o.members.join(' ') || 'nobody'} and owned ${o.shards.join(' ') || 'nothing'}`
        : `${name} never reported what it owns`,
    );
  }
}

for (const child of replicas.values()) child.kill('SIGTERM');
await Promise.all(
  [...replicas.values()].map(
    (c) =>
      new Promise((resolve) =>
        c.exitCode !== null || c.signalCode ? resolve(0) : c.once('exit', resolve),
      ),
  ),
);
if (!ok) {
  log('FAILED');
  process.exit(1);
}
log("every shard had one owner at a time; only the dead replica's shards moved");
