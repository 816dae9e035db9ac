// Runs every compiled test file under test/dist with node's test runner, once
// per transport: clients that do not choose one take ETCDKIT_TRANSPORT.
// Usage: node scripts/run-tests.mjs [filter] [--transport gateway|grpc|both]
//   filter: a substring of the file path; --transport: default both, in turn.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('..', import.meta.url).pathname;
const testRoot = join(root, 'test', 'dist');
const { values, positionals } = parseArgs({
  options: { transport: { type: 'string', default: 'both' } },
  allowPositionals: true,
});
const filter = positionals[0] ?? '';
const transports = values.transport === 'both' ? ['gateway', 'grpc'] : [values.transport];
if (!transports.every((t) => t === 'gateway' || t === 'grpc')) {
  console.error(`--transport must be gateway, grpc or both, got ${values.transport}`);
  process.exit(2);
}

function collect(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return collect(path);
    return entry.name.endsWith('.test.js') ? [path] : [];
  });
}

const files = collect(testRoot)
  .filter((f) => relative(root, f).includes(filter))
  .sort();
if (files.length === 0) {
  console.error(
    `no test files under ${relative(root, testRoot)} match "${filter}"; run "pnpm build" first`,
  );
  process.exit(1);
}
const outcomes = [];
for (const transport of transports) {
  console.log(`\n# transport: ${transport} (${files.length} files)\n`);
  const started = Date.now();
  const result = spawnSync(
    process.execPath,
    ['--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=300000', ...files],
    { stdio: 'inherit', cwd: root, env: { ...process.env, ETCDKIT_TRANSPORT: transport } },
  );
  const seconds = Math.round((Date.now() - started) / 1000);
  outcomes.push({ transport, status: result.status ?? 1, seconds });
}
console.log('\n# transports');
for (const { transport, status, seconds } of outcomes) {
  console.log(`# ${transport}: ${status === 0 ? 'pass' : `fail (exit ${status})`} in ${seconds} s`);
}
process.exit(outcomes.some((o) => o.status !== 0) ? 1 : 0);
