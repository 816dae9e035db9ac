/**
 * `etcdkit barrier hold|release|wait KEY` and `etcdkit barrier enter KEY
 * --count N [-- COMMAND]`: barriers on the keys etcd's Go contrib/recipes use.
 * The barrier library is imported when a subcommand runs, so listing the
 * commands does not load it.
 */
import { type Etcd, leaseHex } from '@etcdkit/client';
import type { Io, Parsed } from './command.js';
import { seconds, status } from './command.js';
import { UsageError } from './config.js';
import { EXIT_FAILED, EXIT_LOST } from './exit.js';
import { DEFAULT_GRACE_SECONDS, DEFAULT_HOLD_TTL_SECONDS } from './holds.js';
import { cannotRun, supervise } from './supervise.js';

export const BARRIER_USAGE =
  'barrier hold|release|wait KEY [--json] | barrier enter KEY --count N [--ttl SECONDS] [--grace SECONDS] [--json] [-- COMMAND [ARGS...]]';

export async function barrier(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [sub, key, ...extra] = p.positionals;
  if (!sub || !key || extra.length > 0) throw new UsageError(`usage: etcdkit ${BARRIER_USAGE}`);
  if (sub !== 'enter' && (p.command.length > 0 || p.values.count !== undefined)) {
    throw new UsageError(`only barrier enter takes --count or a COMMAND`);
  }
  const { Barrier, BarrierHeldError } = await import('@etcdkit/barrier');
  const signal = io.signal;
  switch (sub) {
    case 'hold':
      try {
        await new Barrier(etcd, key).hold({ signal });
      } catch (err) {
        if (!(err instanceof BarrierHeldError)) throw err;
        io.err(`etcdkit barrier: ${key} is held already`);
        return EXIT_FAILED;
      }
      status(p, io, `holding ${key}`, { event: 'held', key });
      return 0;
    case 'release': {
      const released = await new Barrier(etcd, key).release({ signal });
      status(p, io, released ? `released ${key}` : `${key} was not held`, {
        event: 'released',
        key,
        held: String(released),
      });
      return 0;
    }
    case 'wait':
      await new Barrier(etcd, key).wait({ signal });
      status(p, io, `passed ${key}: it is not held`, { event: 'passed', key });
      return 0;
    case 'enter':
      return enter(etcd, key, p, io);
    default:
      throw new UsageError(`unknown barrier command "${sub}"; usage: etcdkit ${BARRIER_USAGE}`);
  }
}

/** Enters the double barrier KEY, runs COMMAND (or waits for a signal), and leaves. */
async function enter(etcd: Etcd<string>, key: string, p: Parsed, io: Io): Promise<number> {
  const given = p.values.count;
  const count = Number(given);
  if (
    given === undefined ||
    !/^\d+$/.test(String(given)) ||
    !Number.isSafeInteger(count) ||
    count < 1
  ) {
    throw new UsageError('barrier enter needs --count N, a whole number >= 1');
  }
  const ttl = seconds(p, 'ttl', DEFAULT_HOLD_TTL_SECONDS, true);
  const graceMs = seconds(p, 'grace', DEFAULT_GRACE_SECONDS, false) * 1000;
  if (p.command.length > 0) {
    const cannot = cannotRun(p.command[0]!, io);
    if (cannot) return cannot;
  }
  const { DoubleBarrier } = await import('@etcdkit/barrier');
  await using session = await etcd.session({ ttl, signal: io.signal });
  await using double = new DoubleBarrier(etcd, key, count, { session });
  await double.enter({ signal: io.signal });
  const lease = leaseHex(session.lease);
  status(p, io, `entered ${key} (${count} participants)`, {
    event: 'entered',
    key,
    participant: double.participantKey,
    lease,
  });
  // Leaves, waiting for every other participant; false if this one's lease was lost.
  const leave = async (): Promise<boolean> => {
    status(p, io, `leaving ${key}`, { event: 'leaving', key });
    try {
      await double.leave();
    } catch (err) {
      if (session.alive) throw err;
      return false;
    }
    status(p, io, `left ${key}`, { event: 'left', key });
    return true;
  };
  if (p.command.length > 0) {
    return await supervise(p.command, {
      held: {
        what: 'barrier',
        name: key,
        env: {
          ETCDKIT_BARRIER_KEY: key,
          ETCDKIT_PARTICIPANT_KEY: double.participantKey!,
          ETCDKIT_LEASE: lease,
        },
        lost: session.signal,
        release: leave,
      },
      graceMs,
      signal: io.signal,
      report: (text, fields) => status(p, io, text, fields),
    });
  }
  // No command: stay in until Ctrl-C or SIGTERM, which is the normal way to end; then leave.
  const ended = AbortSignal.any([session.signal, io.signal]);
  await new Promise((resolve) => ended.addEventListener('abort', resolve, { once: true }));
  if (!session.signal.aborted && (await leave())) return 0;
  status(p, io, `barrier ${key} lost (the session's lease ended)`, { event: 'lost', key });
  return EXIT_LOST;
}
