/**
 * A double barrier participant in its own process, for the fault tests:
 * `node participant.js ENDPOINTS KEY COUNT TTL`. It prints "entered" once
 * in, then "leaving" when a line arrives on stdin, then "left".
 */
import { once } from 'node:events';
import { DoubleBarrier } from '@etcdkit/barrier';
import { Etcd } from '@etcdkit/client';

const [endpoints, key, count, ttl] = process.argv.slice(2) as [string, string, string, string];
const client = new Etcd({ endpoints: endpoints.split(',') });
const session = await client.session({ ttl: Number(ttl) });
const barrier = new DoubleBarrier(client, key, Number(count), { session });
await barrier.enter();
console.log(`entered ${barrier.participantKey}`);
await once(process.stdin, 'data');
console.log('leaving');
await barrier.leave();
console.log('left');
await client.close();
