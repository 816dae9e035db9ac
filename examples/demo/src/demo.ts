/**
 * The demo: starts a 3-member etcd cluster on free loopback ports in a
 * temporary directory, runs the examples against it one after the
 * other with their live output, then stops the cluster and removes its data,
 * also when interrupted with Ctrl-C.
 *
 * `--transport gateway|grpc` (default: ETCDKIT_TRANSPORT, else gateway) picks
 * how the examples talk to etcd; they take it from ETCDKIT_TRANSPORT.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { type EtcdCluster, startEtcd } from '@etcdkit/harness';

const WIRES: Record<string, string> = {
  gateway: "etcd's JSON gateway over HTTP/1.1, watches and keepalives on WebSockets",
  grpc: "etcd's gRPC over HTTP/2, one session per member",
};
const { values } = parseArgs({ options: { transport: { type: 'string' } } });
const transport = values.transport ?? process.env.ETCDKIT_TRANSPORT ?? 'gateway';
if (!Object.hasOwn(WIRES, transport)) {
  console.error(`[demo] --transport must be gateway or grpc, got ${JSON.stringify(transport)}`);
  process.exit(2);
}

const require = createRequire(import.meta.url);
const examples = [
  ['Locks in workers', '@etcdkit/example-locks-in-workers'],
  ['Service discovery', '@etcdkit/example-service-discovery'],
  ['Leader election', '@etcdkit/example-leader-election'],
  ['Work sharing', '@etcdkit/example-work-sharing'],
] as const;

let cluster: EtcdCluster | undefined;
let current: ChildProcess | undefined;
let stopping = false;

async function stop(code: number): Promise<never> {
  stopping = true;
  // Each example runs in its own process group: end it with every worker it
  // started, including one frozen with SIGSTOP (SIGKILL reaches it too).
  if (current?.pid !== undefined && current.exitCode === null) {
    try {
      process.kill(-current.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (cluster) {
    console.log('\n[demo] stopping the etcd cluster and removing its data');
    await cluster.close();
  }
  process.exit(code);
}
process.once('SIGINT', () => void stop(130));
process.once('SIGTERM', () => void stop(143));

console.log('[demo] starting a 3-member etcd cluster on 127.0.0.1 …');
cluster = await startEtcd({ members: 3 });
console.log(`[demo] etcd is up: ${cluster.endpoints.join(', ')}`);
console.log(`[demo] transport: ${transport} (${WIRES[transport]})`);

let failures = 0;
for (const [title, pkg] of examples) {
  if (stopping) break;
  console.log(`\n[demo] ── ${title} ──`);
  const main = join(dirname(require.resolve(`${pkg}/package.json`)), 'dist', 'main.js');
  current = spawn(process.execPath, [main], {
    env: {
      ...process.env,
      ETCD_ENDPOINTS: cluster.endpoints.join(','),
      ETCDKIT_TRANSPORT: transport,
    },
    stdio: 'inherit',
    detached: true,
  });
  const code = await new Promise<number>((resolve) =>
    current?.once('exit', (c) => resolve(c ?? 1)),
  );
  if (code !== 0) {
    failures++;
    console.log(`[demo] ${title} failed (exit code ${code})`);
  }
}
console.log(
  failures === 0
    ? `\n[demo] all ${examples.length} examples ran as expected over ${transport}`
    : `\n[demo] ${failures} example(s) failed over ${transport}`,
);
await stop(failures === 0 ? 0 : 1);
