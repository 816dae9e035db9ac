/**
 * Helpers for the watch, session and mirror tests:
 * - `Recorder`: drains a watcher in the background and keeps what it got.
 * - `history`: the events under a prefix as etcd itself replays them, read
 *   with plain `fetch`, the reference that watchers are checked against.
 * - `rawWatch`: a watch opened on the gateway without the client.
 * - `metric`, `labelledMetric`: values from a member's `/metrics`.
 * - `Writer`: a steady stream of writes while a test breaks things.
 */
import assert from 'node:assert/strict';
import type { WatchBatch, WatchEvent } from '@etcdkit/client';
import { eventually } from '@etcdkit/harness';
import type { Json } from '../client/helpers.js';

const b64 = (text: string | Uint8Array): string => Buffer.from(text).toString('base64');
const unb64 = (text: unknown): string =>
  typeof text === 'string' ? Buffer.from(text, 'base64').toString('utf8') : '';

/** Drains a watcher in the background, keeping every batch and event it delivers. */
export class Recorder<V = unknown> {
  readonly batches: WatchBatch<V>[] = [];
  readonly events: WatchEvent<V>[] = [];
  /** Settles when the iteration ends: undefined when it finished, else what it threw. */
  readonly ended: Promise<unknown>;

  constructor(watcher: AsyncIterable<WatchBatch<V>>) {
    this.ended = (async () => {
      try {
        for await (const batch of watcher) {
          this.batches.push(batch);
          for (const event of batch.events) this.events.push(event);
        }
        return undefined;
      } catch (err) {
        return err;
      }
    })();
  }

  /** Waits until at least `count` events have arrived. */
  async waitFor(count: number, timeout = 20_000): Promise<void> {
    await eventually(
      () => assert.ok(this.events.length >= count, `${this.events.length} of ${count} events`),
      { timeout, interval: 20 },
    );
  }

  /** The events as comparable lines (see `eventLine`). */
  lines(): string[] {
    return this.events.map(eventLine);
  }
}

/** One event as `<revision> <type> <key> <value as UTF-8>`. */
export function eventLine(event: WatchEvent<unknown>): string {
  const value = event.type === 'put' ? Buffer.from(event.kv.valueBytes).toString('utf8') : '';
  return `${event.kv.modRevision} ${event.type} ${event.kv.key} ${value}`;
}

/**
 * Asserts that `actual` is exactly `expected`, with no duplicate, and reports
 * the first difference briefly rather than diffing two huge arrays.
 */
export function assertSameEvents(actual: string[], expected: string[], what = 'events'): void {
  const seen = new Set<string>();
  for (const line of actual) {
    assert.ok(!seen.has(line), `${what}: delivered twice: ${line}`);
    seen.add(line);
  }
  const n = Math.min(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(
        `${what}: first difference at #${i}: got "${actual[i]}", expected "${expected[i]}" ` +
          `(previous: "${i > 0 ? expected[i - 1] : ''}")`,
      );
    }
  }
  assert.equal(
    actual.length,
    expected.length,
    `${what}: got ${actual.length}, expected ${expected.length}; ` +
      `next expected: "${expected[n] ?? ''}", next got: "${actual[n] ?? ''}"`,
  );
}

/**
 * The history of every key under `prefix` (a full key prefix, as stored) from
 * revision `from` up to `to` inclusive, as etcd replays it to a fresh watch.
 * `to` must be the revision of an event under the prefix. Lines are in the
 * format of `eventLine`, with `strip` removed from the front of each key.
 */
export async function history(
  endpoint: string,
  prefix: string,
  from: bigint,
  to: bigint,
  strip = '',
): Promise<string[]> {
  const end = Buffer.from(prefix);
  end[end.length - 1]!++;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 60_000);
  const lines: string[] = [];
  try {
    const res = await fetch(`${endpoint}/v3/watch`, {
      method: 'POST',
      body: JSON.stringify({
        create_request: { key: b64(prefix), range_end: b64(end), start_revision: String(from) },
      }),
      signal: controller.signal,
    });
    assert.equal(res.status, 200, 'history: watch request');
    assert.ok(res.body, 'history: a body');
    const decoder = new TextDecoder();
    let text = '';
    for await (const chunk of res.body) {
      text += decoder.decode(chunk as Uint8Array, { stream: true });
      let newline = text.indexOf('\n');
      while (newline !== -1) {
        const line = text.slice(0, newline);
        text = text.slice(newline + 1);
        newline = text.indexOf('\n');
        if (line.trim() === '') continue;
        const result = (JSON.parse(line) as { result?: Json }).result;
        assert.ok(result, `history: unexpected message ${line.slice(0, 200)}`);
        assert.ok(!result.canceled, `history: watch cancelled: ${line.slice(0, 200)}`);
        let reached = false;
        for (const event of (result.events as Json[] | undefined) ?? []) {
          const kv = event.kv as Json;
          const revision = BigInt(kv.mod_revision as string);
          const type = event.type === 'DELETE' ? 'delete' : 'put';
          const key = unb64(kv.key).slice(strip.length);
          lines.push(`${revision} ${type} ${key} ${type === 'put' ? unb64(kv.value) : ''}`);
          reached ||= revision >= to;
        }
        // A revision's events come in one message (fragments are not asked for).
        if (reached) return lines;
      }
    }
    assert.fail(`history: the stream ended before revision ${to}`);
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

/** The value of an unlabelled metric in a member's `/metrics`. */
export async function metric(endpoint: string, name: string): Promise<number> {
  const res = await fetch(`${endpoint}/metrics`, { signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `metric ${name} not found`);
  return Number(line.slice(name.length + 1));
}

/** The value of a labelled metric, e.g. `grpc_server_started_total` with `grpc_method="Watch"`. */
export async function labelledMetric(
  endpoint: string,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const res = await fetch(`${endpoint}/metrics`, { signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && wanted.every((w) => l.includes(w)));
  assert.ok(line, `metric ${name} ${wanted.join(',')} not found`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Milliseconds since `start` (from `performance.now()`), rounded for printing. */
export function since(start: number): number {
  return Math.round(performance.now() - start);
}

/** A watch opened straight on etcd's gateway (no client), recording every message. */
export interface RawWatch {
  readonly messages: Json[];
  /** Waits until `check(messages)` holds. */
  waitFor(check: (messages: Json[]) => boolean, timeout?: number): Promise<void>;
  close(): void;
}

/** Opens `POST /v3/watch` with `create` as the create request; resolves once etcd created it. */
export async function rawWatch(endpoint: string, create: Json): Promise<RawWatch> {
  const controller = new AbortController();
  const res = await fetch(`${endpoint}/v3/watch`, {
    method: 'POST',
    body: JSON.stringify({ create_request: create }),
    signal: controller.signal,
  });
  assert.equal(res.status, 200, 'raw watch request');
  assert.ok(res.body, 'raw watch: a body');
  const body = res.body;
  const messages: Json[] = [];
  void (async () => {
    const decoder = new TextDecoder();
    let text = '';
    try {
      for await (const chunk of body) {
        text += decoder.decode(chunk as Uint8Array, { stream: true });
        for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n')) {
          const line = text.slice(0, nl).trim();
          text = text.slice(nl + 1);
          if (line) messages.push(JSON.parse(line) as Json);
        }
      }
    } catch {
      // aborted by close()
    }
  })();
  const raw: RawWatch = {
    messages,
    waitFor: (check, timeout = 20_000) =>
      eventually(() => assert.ok(check(messages), `raw watch: ${messages.length} messages`), {
        timeout,
      }),
    close: () => controller.abort(),
  };
  await raw.waitFor((m) => m.some((x) => (x.result as Json | undefined)?.created === true));
  return raw;
}

/** Events carried by raw watch messages. */
export function rawEvents(messages: Json[]): Json[] {
  return messages.flatMap((m) => ((m.result as Json | undefined)?.events as Json[]) ?? []);
}

/** What a `Writer` needs of a client. */
interface Setter {
  set(key: string, value: string): Promise<{ revision: bigint }>;
}

/**
 * Writes `k<i>` = `v<i>` one after another until stopped, for tests that break
 * things while writes go on. A failed write is not retried: whether it was
 * applied is for etcd's history to say, which the tests compare against.
 */
export class Writer {
  /** Writes that succeeded. */
  written = 0;
  /** Writes that failed (refused, timed out, or of unknown outcome). */
  failed = 0;
  #stopped = false;
  readonly #done: Promise<void>;

  constructor(client: Setter, pauseMs = 2) {
    this.#done = (async () => {
      for (let i = 0; !this.#stopped; i++) {
        try {
          await client.set(`k${String(i).padStart(6, '0')}`, `v${i}`);
          this.written++;
          if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
        } catch {
          this.failed++;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    })();
  }

  /** Waits until `count` more writes have succeeded. */
  async advance(count: number, timeout = 30_000): Promise<void> {
    const target = this.written + count;
    await eventually(
      () => assert.ok(this.written >= target, `${this.written} of ${target} writes`),
      {
        timeout,
        interval: 20,
      },
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
  }
}
