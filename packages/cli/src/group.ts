/**
 * `etcdkit group ...`: join a group (until Ctrl-C, or while COMMAND runs),
 * list its members, follow them live, and ask which member owns a key.
 */
import { type Etcd, leaseHex } from '@etcdkit/client';
import { Group, type Member, type Membership, rendezvousOwner } from '@etcdkit/group';
import { type Io, type Parsed, seconds, status } from './command.js';
import { UsageError } from './config.js';
import { EXIT_FAILED, EXIT_LOST } from './exit.js';
import { DEFAULT_GRACE_SECONDS, DEFAULT_HOLD_TTL_SECONDS } from './holds.js';
import { cannotRun, supervise } from './supervise.js';

export async function group(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [sub, name, arg, ...extra] = p.positionals;
  // run() prints the full usage after this message.
  const usage = () =>
    new UsageError('expected join GROUP ID, ls GROUP, watch GROUP or owner GROUP KEY');
  if (!name || extra.length > 0) throw usage();
  if (sub === 'join' && arg) return join(etcd, name, arg, p, io);
  if (p.command.length > 0 || p.values.capability !== undefined)
    throw new UsageError('only join takes --capability and a COMMAND');
  if (sub === 'ls' && !arg) return ls(new Group(etcd, name), p, io);
  if (sub === 'watch' && !arg) return watch(new Group(etcd, name), p, io);
  if (sub === 'owner' && arg) return owner(new Group(etcd, name), arg, p, io);
  throw usage();
}

/** `--capability zone=a --capability gpu=yes` as `{ zone: 'a', gpu: 'yes' }`. */
function capabilities(p: Parsed): Record<string, string> {
  const given = p.values.capability as unknown as string[] | undefined;
  const result: Record<string, string> = {};
  for (const pair of given ?? []) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new UsageError(`--capability takes NAME=VALUE, got ${JSON.stringify(pair)}`);
    result[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return result;
}

async function join(
  etcd: Etcd<string>,
  name: string,
  id: string,
  p: Parsed,
  io: Io,
): Promise<number> {
  const ttl = seconds(p, 'ttl', DEFAULT_HOLD_TTL_SECONDS, true);
  const graceMs = seconds(p, 'grace', DEFAULT_GRACE_SECONDS, false) * 1000;
  const caps = capabilities(p);
  if (p.command.length > 0) {
    const cannot = cannotRun(p.command[0]!, io);
    if (cannot) return cannot;
  }
  const membership = await new Group(etcd, name).join(id, {
    capabilities: caps,
    ttl,
    signal: io.signal,
  });
  const lease = leaseHex(membership.lease);
  status(p, io, `joined ${name} as ${id}`, {
    event: 'joined',
    group: name,
    id,
    key: membership.key,
    lease,
  });
  const release = () => leave(membership);
  try {
    if (p.command.length > 0) {
      return await supervise(p.command, {
        held: {
          what: 'membership',
          name: `${name}/${id}`,
          env: { ETCDKIT_GROUP: name, ETCDKIT_MEMBER_ID: id, ETCDKIT_LEASE: lease },
          lost: membership.signal,
          release,
        },
        graceMs,
        signal: io.signal,
        report: (text, fields) => status(p, io, text, fields),
      });
    }
    // No command: stay a member until Ctrl-C, which is the normal way to end.
    const ended = AbortSignal.any([membership.signal, io.signal]);
    await new Promise((resolve) => ended.addEventListener('abort', resolve, { once: true }));
    if (!(await release())) {
      const reason = (membership.signal.reason as Error).message;
      status(p, io, `membership ${name}/${id} lost (${reason})`, { event: 'lost', reason });
      return EXIT_LOST;
    }
    return 0;
  } finally {
    await release().catch(() => undefined);
  }
}

/** Leaves; resolves false if the membership had been lost already. */
async function leave(membership: Membership): Promise<boolean> {
  const active = membership.active;
  await membership.leave();
  return active;
}

function memberJson(m: Member) {
  return {
    id: m.id,
    capabilities: m.capabilities,
    lease: leaseHex(m.lease),
    createRevision: String(m.createRevision),
  };
}

function memberText(m: Member): string {
  const caps = Object.entries(m.capabilities).map(([k, v]) => `${k}=${v}`);
  return caps.length > 0 ? `${m.id}\t${caps.join(' ')}` : m.id;
}

async function ls(g: Group, p: Parsed, io: Io): Promise<number> {
  for (const m of await g.members({ signal: io.signal }))
    io.out(p.values.json ? JSON.stringify(memberJson(m)) : memberText(m));
  return 0;
}

/** Prints the members as `joined`, then every change, until Ctrl-C. */
async function watch(g: Group, p: Parsed, io: Io): Promise<number> {
  await using view = await g.view({ signal: io.signal });
  const print = (type: string, m: Member) =>
    io.out(
      p.values.json ? JSON.stringify({ type, ...memberJson(m) }) : `${type}\t${memberText(m)}`,
    );
  for (const m of view.members()) print('joined', m);
  view.on('joined', (m) => print('joined', m));
  view.on('left', (m) => print('left', m));
  view.on('updated', (m) => print('updated', m));
  await new Promise<void>((resolve) => {
    if (!view.open) resolve();
    view.once('closed', resolve);
  });
  return 0;
}

/** The member that owns KEY by rendezvous hashing over the members now: one read. */
async function owner(g: Group, key: string, p: Parsed, io: Io): Promise<number> {
  const members = (await g.members({ signal: io.signal })).map((m) => m.id);
  const id = rendezvousOwner(key, members);
  if (id === undefined) {
    io.err(`${g.name} has no members`);
    return EXIT_FAILED;
  }
  io.out(p.values.json ? JSON.stringify({ key, owner: id, members }) : id);
  return 0;
}
