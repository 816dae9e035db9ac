// A service instance in a process of its own, for process.test.ts: registers,
// prints {"registered": "<lease>"}, then waits. SIGTERM deregisters cleanly
// and exits; SIGKILL leaves the registration to expire with its lease.
import { Etcd } from '@etcdkit/client';
import { Registry } from '@etcdkit/registry';
import type { InstanceProcessConfig } from './helpers.js';

const config = JSON.parse(process.argv[2] ?? '{}') as InstanceProcessConfig;
const client = new Etcd({ endpoints: config.endpoints, keyPrefix: config.keyPrefix });
const registry = new Registry(client, { ttl: config.ttl });
const registration = await registry.register(config.service, {
  id: config.id,
  address: '127.0.0.1',
  port: config.port,
});

process.once('SIGTERM', () => {
  void (async () => {
    await registration.deregister();
    await client.close();
    process.exit(0);
  })();
});
process.stdout.write(`${JSON.stringify({ registered: String(registration.lease) })}\n`);
