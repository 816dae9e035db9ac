// A service instance with a health check, in a process of its own, for
// health-process.test.ts. Registers with a check that runs every 10 ms and
// prints {"registered": "<lease>"}. Then, by its mode:
// - "hold": keeps running (the test kills it);
// - "deregister" / "close": once a check is in flight (one that waits for its
//   signal), deregisters (or closes the registry) and the client, prints how
//   the in-flight check ended and how many checks ran, and then does not call
//   process.exit: the process ends only if nothing was left running.
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd } from '@etcdkit/client';
import { Registry } from '@etcdkit/registry';

interface Config {
  endpoints: string[];
  keyPrefix: string;
  mode: 'hold' | 'deregister' | 'close';
  ttl: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const say = (message: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify(message)}\n`);
const client = new Etcd({ endpoints: config.endpoints, keyPrefix: config.keyPrefix });
const registry = new Registry(client, { ttl: config.ttl });

let checks = 0;
let hanging: () => void = () => undefined;
const hangingStarted = new Promise<void>((resolve) => {
  hanging = resolve;
});
let aborted: Promise<string> | undefined;
const registration = await registry.register(
  'api',
  { id: 'checked', address: '127.0.0.1', port: 7000 },
  {
    health: {
      interval: 10,
      timeout: 60_000,
      check: async (signal) => {
        checks++;
        if (checks < 3 || config.mode === 'hold') return true;
        // From the third check on: wait until aborted, as a slow dependency would.
        aborted ??= new Promise((resolve) => {
          signal.addEventListener('abort', () => resolve(String(signal.reason?.name)), {
            once: true,
          });
        });
        hanging();
        await new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
        );
      },
    },
  },
);
say({ registered: String(registration.lease) });

if (config.mode !== 'hold') {
  await hangingStarted;
  if (config.mode === 'deregister') await registration.deregister();
  else await registry.close();
  await client.close();
  const after = checks;
  const reason = await aborted;
  // Room for a check that should not happen; the count must not move.
  await sleep(100);
  say({ abortedBy: reason, checks: after, checksLater: checks });
}
