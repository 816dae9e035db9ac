/**
 * Summarizes V8 CPU profiles (`node --cpu-prof`, or `run.js --cpu-prof`):
 * where the busy time went, by module and by function, self and inclusive.
 *
 *   node bench/dist/profile.js bench/profiles [--top 25]
 *   node bench/dist/profile.js bench/profiles/get-seq-etcdkit.cpuprofile \
 *     --vs bench/profiles/get-seq-raw.cpuprofile
 *
 * Self time is the time a function was on top of the stack; inclusive time
 * counts a function once per sample whenever it is anywhere on the stack.
 * Shares are of the busy time: idle samples are left out. When the runner
 * wrote how many operations the profile covers (a `.ops.json` beside it),
 * times are also given per operation, and `--vs` lines two profiles up per
 * operation, largest difference first.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { opsFile } from './protocol.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a script comes from, in a few words: a package, a client file, or node itself. */
export function moduleOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(V8 builtins)';
  const pnpm = /\/node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pnpm) return pnpm[1]!;
  const plain = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (plain) return plain[1]!;
  const client = /\/packages\/client\/dist\/(.+)\.js$/.exec(url);
  if (client) return `@etcdkit/client ${client[1]}`;
  const bench = /\/bench\/dist\/(.+)\.js$/.exec(url);
  if (bench) return `bench ${bench[1]}`;
  const internal = /^node:internal\/(.+?)(?:\/[^/]+)?$/.exec(url);
  if (internal) return `node:${internal[1]}`;
  if (url.startsWith('node:')) return url;
  return basename(url);
}

function functionKey(frame: CallFrame): string {
  const name = frame.functionName || '(anonymous)';
  if (frame.url === '') return name;
  return `${name}  ${moduleOf(frame.url, name)}:${frame.lineNumber + 1}`;
}

export interface ProfileSummary {
  busyMs: number;
  idleMs: number;
  byModule: [string, number][];
  selfByFunction: [string, number][];
  inclusiveByFunction: [string, number][];
}

export function summarizeProfile(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const byModule = new Map<string, number>();
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, us: number) =>
    map.set(key, (map.get(key) ?? 0) + us);
  let busy = 0;
  let idle = 0;

  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (!node) return;
    const frame = node.callFrame;
    if (frame.functionName === '(idle)') {
      idle += us;
      return;
    }
    busy += us;
    add(self, functionKey(frame), us);
    add(byModule, moduleOf(frame.url, frame.functionName), us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)?.callFrame;
      if (!f || f.functionName === '(root)') continue;
      const key = functionKey(f);
      if (!seen.has(key)) {
        seen.add(key);
        add(inclusive, key, us);
      }
    }
  });

  const sorted = (map: Map<string, number>) =>
    [...map.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]): [string, number] => [k, v / 1000]);
  return {
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    byModule: sorted(byModule),
    selfByFunction: sorted(self),
    inclusiveByFunction: sorted(inclusive),
  };
}

interface Loaded {
  name: string;
  summary: ProfileSummary;
  ops: number | undefined;
}

function load(file: string): Loaded {
  const summary = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
  const sidecar = opsFile(file);
  const ops = existsSync(sidecar)
    ? (JSON.parse(readFileSync(sidecar, 'utf8')) as { ops: number }).ops
    : undefined;
  return { name: basename(file), summary, ops };
}

type Section = 'byModule' | 'selfByFunction' | 'inclusiveByFunction';
const SECTIONS: [Section, string][] = [
  ['byModule', 'self time by module'],
  ['selfByFunction', 'self time by function'],
  ['inclusiveByFunction', 'inclusive time by function'],
];

function report(p: Loaded, top: number): string {
  const { summary, ops } = p;
  const perOp = (ms: number) => (ops ? `${((ms * 1000) / ops).toFixed(1).padStart(8)} µs/op` : '');
  const share = (ms: number) => `${((100 * ms) / summary.busyMs).toFixed(1).padStart(5)}%`;
  const lines = [
    `## ${p.name}: ${summary.busyMs.toFixed(0)} ms busy, ${summary.idleMs.toFixed(0)} ms idle` +
      (ops ? `, ${ops} operations, ${perOp(summary.busyMs).trim()} busy` : ''),
  ];
  for (const [section, title] of SECTIONS) {
    lines.push(`${title}:`);
    for (const [k, ms] of summary[section].slice(0, top)) {
      lines.push(`  ${share(ms)} ${ms.toFixed(0).padStart(7)} ms${perOp(ms)}  ${k}`);
    }
  }
  return lines.join('\n');
}

function compare(a: Loaded, b: Loaded, top: number): string {
  if (!a.ops || !b.ops) return `--vs needs the .ops.json of both ${a.name} and ${b.name}`;
  const perOp = (p: Loaded, ms: number) => (ms * 1000) / p.ops!;
  const cell = (us: number) => us.toFixed(1).padStart(8);
  const lines = [
    `## ${a.name} vs ${b.name}, µs per operation`,
    `busy: ${cell(perOp(a, a.summary.busyMs))} ${cell(perOp(b, b.summary.busyMs))}`,
  ];
  for (const [section, title] of SECTIONS) {
    const mine = new Map(a.summary[section]);
    const theirs = new Map(b.summary[section]);
    const rows = [...new Set([...mine.keys(), ...theirs.keys()])]
      .map((k): [string, number, number] => [
        k,
        perOp(a, mine.get(k) ?? 0),
        perOp(b, theirs.get(k) ?? 0),
      ])
      .sort((x, y) => y[1] - y[2] - (x[1] - x[2]));
    lines.push(`${title}: ${a.name}, ${b.name}, difference`);
    for (const [k, x, y] of rows.slice(0, top)) {
      lines.push(`  ${cell(x)} ${cell(y)} ${cell(x - y)}  ${k}`);
    }
  }
  return lines.join('\n');
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '20' }, vs: { type: 'string' } },
  });
  if (positionals.length === 0) {
    console.error(
      'usage: node bench/dist/profile.js <file.cpuprofile | directory>... [--top n] [--vs other.cpuprofile]',
    );
    process.exitCode = 2;
    return;
  }
  const top = Number(values.top);
  const files = positionals.flatMap((p) =>
    statSync(p).isDirectory()
      ? readdirSync(p)
          .filter((f) => f.endsWith('.cpuprofile'))
          .sort()
          .map((f) => join(p, f))
      : [p],
  );
  const other = values.vs === undefined ? undefined : load(values.vs);
  for (const file of files) {
    const p = load(file);
    console.log(`${other ? compare(p, other, top) : report(p, top)}\n`);
  }
}

main();
