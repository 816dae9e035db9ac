/**
 * One worker: takes the lock, reads the counter, adds one, and writes it back
 * in a txn fenced by the lock's guard, so a worker that lost its lock while it
 * was paused cannot overwrite a newer value. Reports each step as a JSON line.
 */
import { createClient, Op } from '@etcdkit/client';
import { type Lock, Mutex } from '@etcdkit/mutex';

const endpoints = (process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',');
const name = process.env.WORKER_NAME ?? `worker-${process.pid}`;
const updates = Number(process.env.UPDATES ?? 10);
const prefix = process.env.EXAMPLE_PREFIX ?? 'examples/locks/';
const ttl = Number(process.env.SESSION_TTL ?? 2);

const report = (event: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ worker: name, ...event })}\n`);

const etcd = createClient({ endpoints, keyPrefix: prefix });
let session = await etcd.session({ ttl });
const counterKey = 'counter';

for (let done = 0; done < updates; ) {
  if (!session.alive) session = await etcd.session({ ttl });
  let lock: Lock;
  try {
    lock = await new Mutex(session, 'counter-lock').lock();
  } catch (err) {
    // The session's lease was lost while waiting (a paused process, a busy
    // machine): take a new session and queue again. Anything else is a failure.
    if (session.alive) throw err;
    continue;
  }
  report({ event: 'locked', token: String(lock.token) });
  const current = (await etcd.get(counterKey))?.value;
  const next = (typeof current === 'number' ? current : 0) + 1;
  // Critical section: the pause signal from the demo lands here, between read and write.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const write = await etcd.txn().if(lock.guard()).success(Op.put(counterKey, next)).commit();
  if (write.succeeded) {
    done++;
    report({ event: 'wrote', token: String(lock.token), value: next });
    // A lock lost after its fenced write went through has nothing left to release.
    await lock.release().catch(() => undefined);
  } else {
    // The lock was lost while paused: the fenced write was refused. Try again.
    report({ event: 'fenced', token: String(lock.token) });
    await lock.release().catch(() => undefined);
  }
}
report({ event: 'finished' });
await session.close();
await etcd.close();
