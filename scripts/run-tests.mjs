// Runs every compiled test file under test/dist with node's test runner.
// Usage: node scripts/run-tests.mjs [filter]   (filter: a substring of the file path)
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const testRoot = join(root, 'test', 'dist');
const filter = process.argv[2] ?? '';

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
const result = spawnSync(
  process.execPath,
  ['--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=300000', ...files],
  { stdio: 'inherit', cwd: root },
);
process.exit(result.status ?? 1);
