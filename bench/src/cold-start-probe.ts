/**
 * Loaded with `node --import` before a command line tool under measurement
 * (cold-start.ts): notes when Node had started, and on the `exit` event writes
 * that, the time of the event and the peak RSS so far as one JSON line to file
 * descriptor 3, as cold-start-child.ts does for a library.
 */
import { writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { ColdStartReport } from './cold-start.js';

const start = performance.now();
process.on('exit', () => {
  const report: ColdStartReport = {
    start,
    exitEvent: performance.now(),
    maxRssKb: process.resourceUsage().maxRSS,
  };
  writeSync(3, `${JSON.stringify(report)}\n`);
});
