import { Etcd } from '@etcdkit/client';
import { startEtcd } from '@etcdkit/harness';

const cluster = await startEtcd();
const etcd = new Etcd({ endpoints: cluster.endpoints, transport: 'grpc', codec: 'string' });
await etcd.set('k', 'x'.repeat(256));
async function run(n) {
  let i = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (i++ < n) await etcd.get('k');
    }),
  );
}
await run(5000);
const c0 = process.cpuUsage();
const t0 = performance.now();
await run(20000);
const c = process.cpuUsage(c0);
const t = performance.now() - t0;
console.log(
  'ops/s',
  Math.round((20000 / t) * 1000),
  'cpu µs/op',
  Math.round((c.user + c.system) / 20000),
);
await etcd.close();
await cluster.close();
