/**
 * One instance of the "greeter" service: an HTTP server on a free loopback
 * port that registers itself in etcd, with a health check of its own
 * endpoint, and deregisters on SIGTERM.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient } from '@etcdkit/client';
import { Registry } from '@etcdkit/registry';

const endpoints = (process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',');
const id = process.env.INSTANCE_ID ?? `greeter-${process.pid}`;
const prefix = process.env.REGISTRY_PREFIX ?? '/examples/services';

const server = createServer((_req, res) => res.end(`hello from ${id}\n`));
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address() as AddressInfo;

const etcd = createClient({ endpoints });
const registry = new Registry(etcd, { prefix, ttl: 2 });
const registration = await registry.register(
  'greeter',
  { id, address: '127.0.0.1', port },
  // The instance checks its own endpoint: consumers pass it over while this fails.
  {
    health: {
      check: async (signal) => (await fetch(`http://127.0.0.1:${port}/`, { signal })).ok,
      interval: 1_000,
    },
  },
);
process.stdout.write(`${JSON.stringify({ event: 'registered', id, port })}\n`);

process.once('SIGTERM', async () => {
  await registration.deregister();
  await registry.close();
  await etcd.close();
  server.close();
  process.exit(0);
});
