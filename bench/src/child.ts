/**
 * One implementation running one workload, alone in its own process so that
 * its CPU time and peak memory are its own. Started by run.ts with an IPC
 * channel; protocol.ts describes the exchange.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { GRPC_TRANSPORT } from './grpc-transport.js';
import { drive } from './measure.js';
import {
  type ChildMessage,
  type ChildTask,
  type Implementation,
  opsFile,
  type RunnerMessage,
  type SliceResult,
} from './protocol.js';
import { quantile } from './stats.js';
import { type Operation, type PrepareContext, type Workload, workloadByName } from './workloads.js';

/** The burst before each slice: enough to reopen every connection of the pool. */
const PRIME_ROUNDS = 4;
const PRIME_MS = 300;

/** A failure to connect or prepare, which the runner reports apart from failures to run. */
class SetUpFailure extends Error {
  constructor(cause: unknown) {
    super('set-up failed', { cause });
  }
}

interface Opened {
  op: Operation;
  close(): Promise<void>;
}

function missing(w: Workload, impl: Implementation): never {
  throw new Error(`workload ${w.name} has no ${impl} implementation`);
}

/** Loads only the implementation measured, so that its peak memory is its own. */
async function open(task: ChildTask, w: Workload, ctx: PrepareContext): Promise<Opened> {
  switch (task.implementation) {
    case 'etcdkit': {
      const { createClient } = await import('@etcdkit/client');
      const etcd = createClient({ endpoints: task.endpoint, codec: 'string' });
      const prepare = w.prepare.etcdkit ?? missing(w, 'etcdkit');
      return { op: await prepare(etcd, ctx), close: () => etcd.close() };
    }
    case 'etcdkit-grpc': {
      const { createClient } = await import('@etcdkit/client');
      const etcd = createClient({ endpoints: task.endpoint, codec: 'string', ...GRPC_TRANSPORT });
      const prepare = w.prepare.etcdkit ?? missing(w, 'etcdkit');
      return { op: await prepare(etcd, ctx), close: () => etcd.close() };
    }
    case 'etcd3': {
      const { Etcd3 } = await import('etcd3');
      const etcd = new Etcd3({ hosts: task.endpoint });
      const prepare = w.prepare.etcd3 ?? missing(w, 'etcd3');
      return { op: await prepare(etcd, ctx), close: async () => etcd.close() };
    }
    case 'raw': {
      const { RawGateway } = await import('./raw.js');
      const raw = new RawGateway(task.endpoint, task.rawConnections);
      const prepare = w.prepare.raw ?? missing(w, 'raw');
      return { op: await prepare(raw, ctx), close: () => raw.close() };
    }
    case 'raw-grpc': {
      const { RawGrpc } = await import('./raw-grpc.js');
      const grpc = new RawGrpc(task.endpoint);
      const prepare = w.prepare['raw-grpc'] ?? missing(w, 'raw-grpc');
      return { op: await prepare(grpc, ctx), close: () => grpc.close() };
    }
  }
}

/**
 * V8's CPU profiler, the one behind `node --cpu-prof`, started after the
 * warm-up so that the profile shows the steady state, not loading and JIT.
 */
async function startProfile(): Promise<() => Promise<object>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    return profile;
  };
}

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) {
      reject(new Error('child.js runs under run.js, with an IPC channel'));
      return;
    }
    process.send(message, undefined, {}, (err) => (err ? reject(err) : resolve()));
  });
}

/** Messages from the runner, one at a time, in order. */
function inbox(): () => Promise<RunnerMessage> {
  const queue: RunnerMessage[] = [];
  let waiting: ((m: RunnerMessage) => void) | undefined;
  process.on('message', (m: RunnerMessage) => {
    if (waiting) {
      const wake = waiting;
      waiting = undefined;
      wake(m);
    } else queue.push(m);
  });
  return () => {
    const next = queue.shift();
    if (next) return Promise.resolve(next);
    return new Promise((resolve) => {
      waiting = resolve;
    });
  };
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? '') as ChildTask;
  const w = workloadByName(task.workload);
  // Without the runner there is nobody to report to.
  const orphaned = () => process.exit(1);
  process.on('disconnect', orphaned);
  const next = inbox();
  // Hand-offs are kept when they begin and end within a measured slice.
  let measuredSince = Number.POSITIVE_INFINITY;
  const handOffs: number[] = [];
  const opened = await open(task, w, {
    implementation: task.implementation,
    handOff: (from, to) => {
      if (from >= measuredSince) handOffs.push(to - from);
    },
  }).catch((err: unknown) => {
    throw new SetUpFailure(err);
  });
  let index = 0;
  const run = async (maxOps: number, budgetMs: number) => {
    const r = await drive(opened.op, {
      concurrency: w.concurrency,
      maxOps,
      budgetMs,
      firstIndex: index,
    });
    index += r.ops;
    return r;
  };

  const warm = await run(task.warmupOps, task.warmupMs);
  await send({ type: 'ready', warmupOps: warm.ops });

  const stopProfile = task.profile ? await startProfile() : undefined;
  const profiledFrom = index;
  const latencies: Float64Array[] = [];
  for (;;) {
    const message = await next();
    if (message.type === 'stop') break;
    if (message.type === 'prime') {
      await run(w.concurrency * PRIME_ROUNDS, PRIME_MS);
      await send({ type: 'primed' });
      continue;
    }
    const cpu = process.cpuUsage();
    measuredSince = performance.now();
    const r = await run(task.sliceOps, task.sliceMs);
    measuredSince = Number.POSITIVE_INFINITY;
    const used = process.cpuUsage(cpu);
    const result: SliceResult = {
      ops: r.ops,
      elapsedMs: r.elapsedMs,
      cpuMicros: used.user + used.system,
      p50Ms: quantile(r.latencies, 0.5),
    };
    await send({ type: 'slice', result });
    latencies.push(r.latencies.slice());
  }

  if (stopProfile && task.profile) {
    writeFileSync(task.profile, JSON.stringify(await stopProfile()));
    writeFileSync(opsFile(task.profile), JSON.stringify({ ops: index - profiledFrom }));
  }
  await opened.close();
  const all = new Float64Array(latencies.reduce((n, l) => n + l.length, 0));
  let at = 0;
  for (const l of latencies) {
    all.set(l, at);
    at += l.length;
  }
  await send({
    type: 'final',
    result: {
      p50Ms: quantile(all, 0.5),
      p99Ms: quantile(all, 0.99),
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      handOffs:
        handOffs.length > 0
          ? {
              count: handOffs.length,
              p50Ms: quantile(handOffs, 0.5),
              p90Ms: quantile(handOffs, 0.9),
              p99Ms: quantile(handOffs, 0.99),
              maxMs: Math.max(...handOffs),
            }
          : undefined,
    },
  });
  process.off('disconnect', orphaned);
  process.disconnect();
}

main().catch(async (err: unknown) => {
  const setUp = err instanceof SetUpFailure;
  const cause = setUp ? err.cause : err;
  const message = cause instanceof Error ? (cause.stack ?? cause.message) : String(cause);
  await send({ type: 'failed', message, setUp }).catch(() => undefined);
  process.exit(1);
});
