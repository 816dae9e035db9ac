#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';
import { Stopped } from './exit.js';
import { run } from './run.js';

// The client's HTTP library (undici) parses responses with llhttp compiled to
// WebAssembly. V8 starts it on its baseline compiler (Liftoff) and, once a
// function has run enough, recompiles it with its optimising compiler on a
// background thread; llhttp's parser function gets there within the first
// response. That compilation takes about 200 ms of CPU and 35 MB, and Node
// waits for it before the process ends, which more than doubled the time of
// `etcdkit put`. A command parses a few responses, where the baseline code
// costs microseconds more each, so this process keeps WebAssembly on the
// baseline compiler. It is set here, in the command's own process, not in
// `run()`, which programs embed; it only concerns WebAssembly, and must be
// set before the first connection compiles the parser.
setFlagsFromString('--liftoff-only');

const stop = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => stop.abort(Stopped.bySignal(signal)));
}
// A reader that went away (`etcdkit ls | head -1`) ends the command quietly and
// successfully, as it would end a shell tool; nothing more is written.
let outputClosed = false;
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  outputClosed = true;
  const code = err.code === 'EPIPE' ? 0 : 1;
  stop.abort(new Stopped(`stdout: ${err.message}`, undefined, code));
});
// Nowhere is left to report a failing stderr.
process.stderr.on('error', () => undefined);
const code = await run(process.argv.slice(2), {
  out: (line) => {
    if (!outputClosed) process.stdout.write(`${line}\n`);
  },
  err: (line) => process.stderr.write(`${line}\n`),
  signal: stop.signal,
});
// process.exit drops what is still queued for a pipe: leave once it has all gone out.
const flushed = (stream: NodeJS.WriteStream) => new Promise((resolve) => stream.write('', resolve));
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
