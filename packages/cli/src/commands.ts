/**
 * The commands on keys, values and leases, which need nothing but the client.
 * Each takes its parsed arguments and an output sink, and resolves with the
 * process exit code. Values are read and written as text.
 */
import { type Etcd, type KeyValue, leaseHex } from '@etcdkit/client';
import { type Io, need, type Parsed, seconds } from './command.js';
import { UsageError } from './config.js';
import { readValue } from './read-value.js';

function show(kv: KeyValue<string>, json: boolean): string {
  if (!json) return `${kv.key}\n${kv.value}`;
  return JSON.stringify({
    key: kv.key,
    value: kv.value,
    createRevision: String(kv.createRevision),
    modRevision: String(kv.modRevision),
    version: kv.version,
    lease: kv.lease === 0n ? undefined : leaseHex(kv.lease),
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
  const usage = 'etcdkit put KEY VALUE|- [--ttl SECONDS] [--json] | etcdkit put KEY --file PATH';
  const [key, given] = need(p, p.values.file === undefined ? 2 : 1, usage);
  const ttl = seconds(p, 'ttl', undefined, true);
  const value = await readValue(given, p.values.file as string | undefined, io);
  const r = await etcd.set(key!, value, ttl ? { ttl, signal: io.signal } : { signal: io.signal });
  io.out(
    p.values.json
      ? JSON.stringify({ key, revision: String(r.revision) })
      : `OK (revision ${r.revision})`,
  );
  return 0;
}

export async function del(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [key] = need(p, 1, 'etcdkit del KEY [--prefix] [--json]');
  const r = p.values.prefix
    ? await etcd.rmdir(key!, { signal: io.signal })
    : await etcd.delete(key!, { signal: io.signal });
  io.out(p.values.json ? JSON.stringify({ deleted: r.deleted }) : String(r.deleted));
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

export async function lease(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [sub, id] = p.positionals;
  if (sub === 'ls' && !id) {
    for (const l of await etcd.leases({ signal: io.signal })) {
      io.out(p.values.json ? JSON.stringify({ lease: leaseHex(l) }) : leaseHex(l));
    }
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
    if (p.values.json) {
      const { ttl, grantedTtl, keys } = info;
      io.out(JSON.stringify({ lease: id, ttl, grantedTtl, keys }));
      return 0;
    }
    io.out(`lease ${id}: ttl ${info.ttl} s of ${info.grantedTtl} s`);
    for (const k of info.keys) io.out(`  ${k}`);
    return 0;
  }
  throw new UsageError('usage: etcdkit lease ls [--json] | etcdkit lease ttl ID [--keys] [--json]');
}
