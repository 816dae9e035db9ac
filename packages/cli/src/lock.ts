/** `etcdkit lock NAME -- COMMAND`: runs COMMAND while holding a fenced lock. */
import { type Etcd, leaseHex } from '@etcdkit/client';
import { LockNotHeldError, Mutex } from '@etcdkit/mutex';
import { type Io, need, type Parsed, seconds, status } from './command.js';
import { UsageError } from './config.js';
import { DEFAULT_GRACE_SECONDS, DEFAULT_HOLD_TTL_SECONDS, LOCK_USAGE } from './holds.js';
import { cannotRun, supervise } from './supervise.js';

export async function lock(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [name] = need(p, 1, `etcdkit ${LOCK_USAGE}`);
  if (p.command.length === 0) throw new UsageError(`usage: etcdkit ${LOCK_USAGE}`);
  const ttl = seconds(p, 'ttl', DEFAULT_HOLD_TTL_SECONDS, true);
  const graceMs = seconds(p, 'grace', DEFAULT_GRACE_SECONDS, false) * 1000;
  const cannot = cannotRun(p.command[0]!, io);
  if (cannot) return cannot;
  await using session = await etcd.session({ ttl, signal: io.signal });
  await using held = await new Mutex(session, name!).lock({ signal: io.signal });
  const lease = leaseHex(session.lease);
  status(p, io, `locked ${name} (token ${held.token})`, {
    event: 'locked',
    name,
    key: held.key,
    token: String(held.token),
    lease,
  });
  // At risk is told, not acted on: only a loss stops the command.
  held.on('suspended', () => status(p, io, `lock ${name} suspended`, { event: 'suspended', name }));
  held.on('resumed', () => status(p, io, `lock ${name} resumed`, { event: 'resumed', name }));
  // The lock's signal aborts on a lost lease and on its key deleted by anyone (it watches it).
  // Awaited here, so the lock and session outlive the command (they are disposed at scope exit).
  return await supervise(p.command, {
    held: {
      what: 'lock',
      name: name!,
      env: {
        ETCDKIT_LOCK_KEY: held.key,
        ETCDKIT_FENCING_TOKEN: String(held.token),
        ETCDKIT_LEASE: lease,
      },
      lost: held.signal,
      release: () =>
        held.release().then(
          () => true,
          (err: unknown) => {
            if (err instanceof LockNotHeldError) return false;
            throw err;
          },
        ),
    },
    graceMs,
    signal: io.signal,
    report: (text, fields) => status(p, io, text, fields),
  });
}
