/**
 * A lock worker, run as a child process by the safety tests: several lockers
 * share one Mutex and one session of this process, and each loops: lock, enter
 * the fenced resource (the test's checker), write to etcd under `lock.guard()`,
 * leave, release. Every section is reported to the parent over IPC, with what
 * the resource and etcd answered. A `stop` message ends the loops.
 *
 * Argument: the JSON of a WorkerConfig.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Compare, Etcd, Op, type Session } from '@etcdkit/client';
import { type Lock, LockNotHeldError, Mutex } from '@etcdkit/mutex';
import { padToken, type SectionReport, type WorkerConfig, type WorkerMessage } from './protocol.js';

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
const stop = new AbortController();
const client = new Etcd({ endpoints: config.endpoints });

function send(message: WorkerMessage): void {
  process.send?.(message);
}

function problem(where: string, err: unknown): void {
  const error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  send({ type: 'problem', worker: config.id, where, error });
}

process.on('message', (message: { type?: string }) => {
  if (message.type === 'stop') stop.abort(new Error('stopped by the test'));
});

// The process's session, shared by its lockers, and a new one once it is lost.
let current: Promise<Session> | undefined;
const mutexes = new WeakMap<Session, Mutex>();
const shared = new Mutex(client, config.lock);

async function mutex(): Promise<Mutex> {
  const ttl = config.ttl;
  if (ttl === undefined) return shared;
  const before = current;
  if (before) {
    const session = await before.catch(() => undefined);
    if (session?.alive) return mutexes.get(session)!;
    if (current === before) current = undefined;
  }
  current ??= client.session({ ttl }).then((session) => {
    mutexes.set(session, new Mutex(session, config.lock));
    return session;
  });
  return mutexes.get(await current)!;
}

async function fence(op: 'enter' | 'exit', lock: Lock, id: string): Promise<boolean> {
  const res = await fetch(`${config.checker}/${op}`, {
    method: 'POST',
    body: JSON.stringify({ token: lock.token.toString(), worker: config.id, id }),
  });
  const body = (await res.json()) as { ok: boolean };
  return body.ok;
}

/** Resolves with the abort reason's name once `signal` aborts, or 'not aborted' after `ms`. */
async function abortReason(signal: AbortSignal, ms: number): Promise<string> {
  const deadline = performance.now() + ms;
  while (!signal.aborted && performance.now() < deadline) await sleep(20);
  if (!signal.aborted) return 'not aborted';
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason.name : String(reason);
}

/**
 * Releases as a careful user would: a release that failed for want of an answer
 * (a member died mid-request) is tried again through the API. The key is never
 * deleted behind the library's back: this process's next contender may take
 * the same key name.
 */
async function release(lock: Lock): Promise<string> {
  let failure: unknown;
  for (let attempt = 1; attempt <= 20; attempt++) {
    try {
      await lock.release();
      return attempt === 1 ? 'released' : `released on attempt ${attempt}`;
    } catch (err) {
      if (err instanceof LockNotHeldError) return err.name;
      failure ??= err;
      await sleep(100);
    }
  }
  problem('release', failure);
  return `release failed: ${failure instanceof Error ? failure.name : String(failure)}`;
}

async function section(lock: Lock, id: string): Promise<void> {
  const report: SectionReport = {
    type: 'section',
    worker: config.id,
    id,
    token: lock.token.toString(),
    key: lock.key,
    entered: false,
    exited: false,
    written: null,
    abortedBeforeWrite: false,
    release: '',
  };
  try {
    report.entered = await fence('enter', lock, id);
    await sleep(config.holdMs);
    // The write is sent whatever the signal says: fencing must hold even for a holder
    // that has not noticed its loss.
    report.abortedBeforeWrite = lock.signal.aborted;
    try {
      const r = await client
        .txn()
        .if(lock.guard(), Compare.value(config.highest, '<', padToken(lock.token + 1n)))
        .success(
          Op.put(config.resource, { token: lock.token.toString(), id }),
          Op.put(config.highest, padToken(lock.token)),
        )
        .commit();
      report.written = r.succeeded;
    } catch (err) {
      report.writeError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
    report.exited = await fence('exit', lock, id);
    // A refused write means the lock is gone: its signal must say so, if not yet then soon.
    if (report.written === false) report.lost = await abortReason(lock.signal, 10_000);
    else if (lock.signal.aborted) report.lost = await abortReason(lock.signal, 0);
  } catch (err) {
    problem('section', err);
  } finally {
    report.release = await release(lock);
    send(report);
  }
}

async function locker(n: number): Promise<number> {
  let round = 0;
  while (!stop.signal.aborted) {
    let lock: Lock;
    try {
      lock = await (await mutex()).lock({ signal: stop.signal });
    } catch (err) {
      if (stop.signal.aborted) break;
      problem('lock', err);
      await sleep(50);
      continue;
    }
    await section(lock, `${config.id}.${n}.${round++}`);
  }
  return round;
}

send({ type: 'ready', worker: config.id, pid: process.pid });
const rounds = await Promise.all(Array.from({ length: config.lockers }, (_, n) => locker(n)));
// Revoke this process's own session (the client closes only its shared one), then the client.
await current
  ?.then((session) => session.close())
  .catch((err: unknown) => problem('close session', err));
await client.close().catch((err: unknown) => problem('close', err));
send({ type: 'done', worker: config.id, sections: rounds.reduce((a, b) => a + b, 0) });
process.disconnect?.();
