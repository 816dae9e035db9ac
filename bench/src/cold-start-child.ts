/**
 * One cold start of a client library, in a fresh process started by
 * cold-start.ts: `node cold-start-child.js <etcdkit|etcdkit-grpc|etcd3>
 * <endpoint> <key>`; etcdkit-grpc is etcdkit with a client that calls etcd
 * over gRPC.
 *
 * It imports the library (nothing is imported before the clock starts but
 * Node's own modules), creates a client, puts one key, closes the client and
 * lets the process exit by itself, as a short script would. On the `exit`
 * event it writes its timings (ms since the process started) and its peak
 * RSS as one JSON line to file descriptor 3.
 */
import { writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { ColdStartReport } from './cold-start.js';
import { GRPC_TRANSPORT } from './grpc-transport.js';

/** File descriptor on which a cold-start process reports to the runner. */
const REPORT_FD = 3;

async function main(): Promise<void> {
  const start = performance.now();
  const [implementation, endpoint, key] = process.argv.slice(2);
  if (!endpoint || !key)
    throw new Error('usage: cold-start-child.js <etcdkit|etcdkit-grpc|etcd3> <endpoint> <key>');
  const report: Partial<ColdStartReport> = { start };
  process.on('exit', () => {
    report.exitEvent = performance.now();
    report.maxRssKb = process.resourceUsage().maxRSS;
    writeSync(REPORT_FD, `${JSON.stringify(report)}\n`);
  });
  if (implementation === 'etcdkit' || implementation === 'etcdkit-grpc') {
    const { createClient } = await import('@etcdkit/client');
    report.imported = performance.now();
    const grpc = implementation === 'etcdkit-grpc' ? GRPC_TRANSPORT : {};
    const etcd = createClient({ endpoints: endpoint, ...grpc });
    await etcd.set(key, 'v');
    report.firstCall = performance.now();
    await etcd.close();
  } else if (implementation === 'etcd3') {
    const { Etcd3 } = await import('etcd3');
    report.imported = performance.now();
    const etcd = new Etcd3({ hosts: endpoint });
    await etcd.put(key).value('v');
    report.firstCall = performance.now();
    etcd.close();
  } else {
    throw new Error(`unknown implementation ${implementation}`);
  }
  report.closed = performance.now();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
