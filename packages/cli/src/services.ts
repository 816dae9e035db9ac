/** `etcdkit services ...`: the service registry's services and instances, listed or watched. */
import { type Etcd, leaseHex } from '@etcdkit/client';
import { Registry, type ServiceInstance } from '@etcdkit/registry';
import type { Io, Parsed } from './command.js';
import { UsageError } from './config.js';

export async function services(etcd: Etcd<string>, p: Parsed, io: Io): Promise<number> {
  const [sub, service] = p.positionals;
  const registry = new Registry(
    etcd,
    p.values['registry-prefix'] ? { prefix: String(p.values['registry-prefix']) } : {},
  );
  try {
    if (sub === 'ls' && !service) {
      for (const name of await registry.services({ signal: io.signal }))
        io.out(p.values.json ? JSON.stringify({ service: name }) : name);
      return 0;
    }
    if (sub === 'ls' && service) {
      for (const i of await registry.instances(service, { signal: io.signal })) {
        io.out(
          p.values.json
            ? JSON.stringify(instanceJson(i))
            : `${i.id}\t${i.host}\t${i.status}\t${health(i)}\tweight=${i.weight}` +
                `${i.zone ? `\tzone=${i.zone}` : ''}${reason(i)}`,
        );
      }
      return 0;
    }
    if (sub === 'watch' && service) {
      await using set = await registry.discover(service, { signal: io.signal });
      try {
        for await (const change of set.changes({ initial: true })) {
          const i = change.instance;
          io.out(
            p.values.json
              ? JSON.stringify({ type: change.type, ...instanceJson(i) })
              : `${change.type}\t${i.id}\t${i.host}\t${i.status}\t${health(i)}${reason(i)}`,
          );
          if (io.signal.aborted) break;
        }
      } catch (err) {
        if (!io.signal.aborted) throw err;
      }
      return 0;
    }
    throw new UsageError(
      'usage: etcdkit services ls [SERVICE] [--json] | etcdkit services watch SERVICE [--json]',
    );
  } finally {
    await registry.close();
  }
}

/** The health column: what the instance's own check says (`healthy` without a check). */
const health = (i: ServiceInstance) => (i.healthy ? 'healthy' : 'unhealthy');

/** Why an unhealthy instance is so, as a last column, quoted: it is free text. */
const reason = (i: ServiceInstance) =>
  !i.healthy && i.healthReason !== undefined ? `\treason=${JSON.stringify(i.healthReason)}` : '';

/** A service instance as JSON: IDs and revisions as strings, as everywhere in `--json`. */
function instanceJson(i: ServiceInstance) {
  return { ...i, lease: leaseHex(i.lease), modRevision: String(i.modRevision) };
}
