/**
 * `etcdkit elect NAME [VALUE] [-- COMMAND]`: leads (or runs COMMAND while
 * leading) until Ctrl-C; `--listen` prints each leader (or that there is none) instead.
 */
import { type Etcd, leaseHex } from '@etcdkit/client';
import { Election, type Leadership, NotLeaderError } from '@etcdkit/election';
import { type Io, type Parsed, seconds, status } from './command.js';
import { UsageError } from './config.js';
import { EXIT_LOST } from './exit.js';
import { DEFAULT_GRACE_SECONDS, DEFAULT_HOLD_TTL_SECONDS, ELECT_USAGE } from './holds.js';
import { cannotRun, supervise } from './supervise.js';

export async function elect(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [name, proposal] = p.positionals;
  if (!name || p.positionals.length > 2) throw new UsageError(`usage: etcdkit ${ELECT_USAGE}`);
  if (p.values.listen) return listen(etcd, name, p, io);
  const ttl = seconds(p, 'ttl', DEFAULT_HOLD_TTL_SECONDS, true);
  const graceMs = seconds(p, 'grace', DEFAULT_GRACE_SECONDS, false) * 1000;
  if (p.command.length > 0) {
    const cannot = cannotRun(p.command[0]!, io);
    if (cannot) return cannot;
  }
  await using session = await etcd.session({ ttl, signal: io.signal });
  const leadership = await new Election(session, name).campaign(proposal ?? `${process.pid}`, {
    signal: io.signal,
  });
  const lease = leaseHex(leadership.lease);
  status(p, io, `elected in ${name} (token ${leadership.token})`, {
    event: 'elected',
    name,
    key: leadership.key,
    token: String(leadership.token),
    lease,
  });
  // At risk is told, not acted on: only a loss stops the command.
  leadership.on('suspended', () =>
    status(p, io, `leadership ${name} suspended`, { event: 'suspended', name }),
  );
  leadership.on('resumed', () =>
    status(p, io, `leadership ${name} resumed`, { event: 'resumed', name }),
  );
  const release = () => resign(leadership);
  try {
    if (p.command.length > 0) {
      return await supervise(p.command, {
        held: {
          what: 'leadership',
          name,
          env: {
            ETCDKIT_LEADER_KEY: leadership.key,
            ETCDKIT_FENCING_TOKEN: String(leadership.token),
            ETCDKIT_LEASE: lease,
          },
          lost: leadership.signal,
          release,
        },
        graceMs,
        signal: io.signal,
        report: (text, fields) => status(p, io, text, fields),
      });
    }
    // No command: lead until Ctrl-C, which is the normal way to end.
    const ended = AbortSignal.any([leadership.signal, io.signal]);
    await new Promise((resolve) => ended.addEventListener('abort', resolve, { once: true }));
    const lost = !leadership.leading;
    if (!(await release()) || lost) {
      const reason = (leadership.signal.reason as Error).message;
      status(p, io, `leadership ${name} lost (${reason})`, { event: 'lost', reason });
      return EXIT_LOST;
    }
    return 0;
  } finally {
    await release().catch(() => undefined);
  }
}

/** Resigns; resolves false if leadership had been lost already. */
function resign(leadership: Leadership): Promise<boolean> {
  return leadership.resign().then(
    () => true,
    (err: unknown) => {
      if (err instanceof NotLeaderError) return false;
      throw err;
    },
  );
}

/** What `--listen` prints when the election has no leader (`--json`: the same fields, null). */
const NO_LEADER = '(no leader)';

/** Prints each leader as it changes, and a line when there is none, until Ctrl-C. */
async function listen(etcd: Etcd<string>, name: string, p: Parsed, io: Io): Promise<number> {
  try {
    for await (const leader of new Election(etcd, name).observe({ signal: io.signal })) {
      if (!p.values.json) {
        io.out(leader ? leader.value : NO_LEADER);
        continue;
      }
      io.out(
        JSON.stringify({
          key: leader?.key ?? null,
          value: leader?.value ?? null,
          token: leader ? String(leader.token) : null,
          lease: leader ? leaseHex(leader.lease) : null,
          modRevision: leader ? String(leader.modRevision) : null,
        }),
      );
    }
  } catch (err) {
    if (!io.signal.aborted) throw err;
  }
  return 0;
}
