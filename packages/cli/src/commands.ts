/**
 * The commands. Each takes its parsed arguments and an output sink, and
 * resolves with the process exit code. Values are read and written as text.
 */
import { spawn } from 'node:child_process';
import type { Etcd, KeyValue } from '@etcdkit/client';
import { Election } from '@etcdkit/election';
import { Mutex } from '@etcdkit/mutex';
import { Registry } from '@etcdkit/registry';
import { UsageError } from './config.js';

export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** Aborts on Ctrl-C / SIGTERM. */
  signal: AbortSignal;
}

export interface Parsed {
  positionals: string[];
  /** Words after `--`. */
  command: string[];
  values: Record<string, string | boolean | undefined>;
}

function need(parsed: Parsed, count: number, usage: string): string[] {
  if (parsed.positionals.length !== count) throw new UsageError(`usage: ${usage}`);
  return parsed.positionals;
}

function show(kv: KeyValue<string>, json: boolean): string {
  if (!json) return `${kv.key}\n${kv.value}`;
  return JSON.stringify({
    key: kv.key,
    value: kv.value,
    createRevision: String(kv.createRevision),
    modRevision: String(kv.modRevision),
    version: kv.version,
    lease: kv.lease === 0n ? undefined : kv.lease.toString(16),
  });
}

export async function get(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [key] = need(p, 1, 'etcdkit get KEY [--json]');
  const kv = await etcd.get(key!, { signal: io.signal });
  if (!kv) {
    io.err(`${key}: not found`);
    return 1;
  }
  io.out(p.values.json ? show(kv, true) : kv.value);
  return 0;
}

export async function put(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [key, value] = need(p, 2, 'etcdkit put KEY VALUE [--ttl SECONDS]');
  const ttl = p.values.ttl === undefined ? undefined : Number(p.values.ttl);
  if (ttl !== undefined && !(Number.isSafeInteger(ttl) && ttl > 0))
    throw new UsageError('--ttl must be a whole number of seconds');
  const r = await etcd.set(key!, value!, ttl ? { ttl, signal: io.signal } : { signal: io.signal });
  io.out(`OK (revision ${r.revision})`);
  return 0;
}

export async function del(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [key] = need(p, 1, 'etcdkit del KEY [--prefix]');
  const r = p.values.prefix
    ? await etcd.rmdir(key!, { signal: io.signal })
    : await etcd.delete(key!, { signal: io.signal });
  io.out(String(r.deleted));
  return 0;
}

export async function ls(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [prefix] =
    p.positionals.length === 0 ? [''] : need(p, 1, 'etcdkit ls [PREFIX] [--json] [--keys-only]');
  const keysOnly = Boolean(p.values['keys-only']);
  for await (const kv of etcd.range(prefix!, { keysOnly, signal: io.signal })) {
    io.out(keysOnly ? kv.key : show(kv, Boolean(p.values.json)));
  }
  return 0;
}

export async function watch(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [key] = need(p, 1, 'etcdkit watch KEY [--prefix] [--from-rev N] [--json]');
  const fromRev = p.values['from-rev'];
  if (fromRev !== undefined && !/^\d+$/.test(String(fromRev)))
    throw new UsageError('--from-rev must be a revision number');
  const options = {
    signal: io.signal,
    prevKv: true,
    ...(fromRev ? { startRevision: BigInt(String(fromRev)) } : {}),
  };
  const watcher = p.values.prefix
    ? await etcd.watchdir(key!, options)
    : await etcd.watch(key!, options);
  watcher.on('disconnected', (e) => io.err(`watch interrupted (${e.message}); resuming`));
  watcher.on('resumed', (r) => io.err(`watch resumed at revision ${r}`));
  try {
    for await (const batch of watcher) {
      for (const event of batch.events) {
        if (p.values.json) {
          io.out(
            JSON.stringify({
              type: event.type,
              key: event.kv.key,
              value: event.type === 'put' ? event.kv.value : undefined,
              modRevision: String(event.kv.modRevision),
            }),
          );
        } else {
          io.out(
            `${event.type.toUpperCase()} ${event.kv.key}${event.type === 'put' ? `\n${event.kv.value}` : ''}`,
          );
        }
      }
    }
  } catch (err) {
    if (io.signal.aborted) return 0;
    throw err;
  }
  return 0;
}

/** Runs `argv` as a child process until it exits or `stop` aborts; resolves with its exit code. */
async function runWhile(argv: string[], stop: AbortSignal, io: Io, why: string): Promise<number> {
  const [cmd, ...args] = argv;
  const child = spawn(cmd!, args, { stdio: 'inherit' });
  const onStop = () => {
    io.err(`${why}: stopping ${cmd}`);
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
  };
  stop.addEventListener('abort', onStop, { once: true });
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', (err) => reject(new UsageError(`cannot run ${cmd}: ${err.message}`)));
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)));
    });
  } finally {
    stop.removeEventListener('abort', onStop);
  }
}

export async function lock(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [name] = need(p, 1, 'etcdkit lock NAME [--ttl SECONDS] -- COMMAND [ARGS...]');
  if (p.command.length === 0) throw new UsageError('usage: etcdkit lock NAME -- COMMAND [ARGS...]');
  await using session = await etcd.session({ ttl: Number(p.values.ttl ?? 10) });
  await using held = await new Mutex(session, name!).lock({ signal: io.signal });
  io.err(`locked ${name} (token ${held.token})`);
  const code = await runWhile(
    p.command,
    AbortSignal.any([held.signal, io.signal]),
    io,
    'lock lost',
  );
  if (!held.held && !io.signal.aborted) return code === 0 ? 1 : code;
  return code;
}

export async function elect(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [name, proposal] = p.positionals;
  if (!name || p.positionals.length > 2)
    throw new UsageError('usage: etcdkit elect NAME [PROPOSAL] [--listen] [-- COMMAND...]');
  const election = new Election(etcd, name);
  if (p.values.listen) {
    try {
      for await (const leader of election.observe({ signal: io.signal })) {
        if (leader) io.out(leader.value);
      }
    } catch (err) {
      if (!io.signal.aborted) throw err;
    }
    return 0;
  }
  await using session = await etcd.session({ ttl: Number(p.values.ttl ?? 10) });
  const leadership = await new Election(session, name).campaign(proposal ?? `${process.pid}`, {
    signal: io.signal,
  });
  io.err(`elected in ${name} (token ${leadership.token})`);
  try {
    if (p.command.length > 0)
      return await runWhile(
        p.command,
        AbortSignal.any([leadership.signal, io.signal]),
        io,
        'leadership lost',
      );
    await new Promise<void>((resolve) =>
      AbortSignal.any([leadership.signal, io.signal]).addEventListener('abort', () => resolve(), {
        once: true,
      }),
    );
    return leadership.leading || io.signal.aborted ? 0 : 1;
  } finally {
    await leadership.resign().catch(() => undefined);
  }
}

export async function services(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [sub, service] = p.positionals;
  const registry = new Registry(
    etcd,
    p.values['registry-prefix'] ? { prefix: String(p.values['registry-prefix']) } : {},
  );
  try {
    if (sub === 'ls' && !service) {
      for (const name of await registry.services({ signal: io.signal })) io.out(name);
      return 0;
    }
    if (sub === 'ls' && service) {
      for (const i of await registry.instances(service, { signal: io.signal })) {
        io.out(
          p.values.json
            ? JSON.stringify({
                ...i,
                lease: i.lease.toString(16),
                modRevision: String(i.modRevision),
              })
            : `${i.id}\t${i.host}\t${i.status}\tweight=${i.weight}${i.zone ? `\tzone=${i.zone}` : ''}`,
        );
      }
      return 0;
    }
    if (sub === 'watch' && service) {
      await using set = await registry.discover(service, { signal: io.signal });
      try {
        for await (const change of set.changes({ initial: true })) {
          io.out(
            `${change.type}\t${change.instance.id}\t${change.instance.host}\t${change.instance.status}`,
          );
          if (io.signal.aborted) break;
        }
      } catch (err) {
        if (!io.signal.aborted) throw err;
      }
      return 0;
    }
    throw new UsageError(
      'usage: etcdkit services ls [SERVICE] [--json] | etcdkit services watch SERVICE',
    );
  } finally {
    await registry.close();
  }
}

export async function lease(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [sub, id] = p.positionals;
  if (sub === 'ls' && !id) {
    for (const l of await etcd.leases({ signal: io.signal })) io.out(l.toString(16));
    return 0;
  }
  if (sub === 'ttl' && id) {
    if (!/^[0-9a-fA-F]+$/.test(id))
      throw new UsageError('a lease ID is hexadecimal, as `lease ls` prints it');
    const info = await etcd.timetolive(BigInt(`0x${id}`), {
      keys: Boolean(p.values.keys),
      signal: io.signal,
    });
    if (!info) {
      io.err(`lease ${id} not found`);
      return 1;
    }
    io.out(`lease ${id}: ttl ${info.ttl} s of ${info.grantedTtl} s`);
    for (const k of info.keys) io.out(`  ${k}`);
    return 0;
  }
  throw new UsageError('usage: etcdkit lease ls | etcdkit lease ttl ID [--keys]');
}
