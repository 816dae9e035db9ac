// NDJSON framing of the HTTP watch fallback: messages survive any split or merge of chunks.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EtcdError, NdjsonParser, ProtocolError } from '@etcdkit/client';

/** Messages shaped like the gateway's, with multi-byte UTF-8 in strings. */
const MESSAGES: unknown[] = [
  { result: { header: { revision: '7' }, watch_id: '1', created: true } },
  {
    result: { watch_id: '1', events: [{ kv: { key: 'a2V5', value: 'dmFs', mod_revision: '8' } }] },
  },
  { note: 'é ключ 🔑 中文 ∑', n: 1 },
  { error: { grpc_code: 14, http_code: 503, message: 'etcdserver: no leader' } },
  [1, 'two', { three: 3 }],
  'a bare string',
  42,
  null,
];

const STREAM = Buffer.from(MESSAGES.map((m) => `${JSON.stringify(m)}\n`).join(''), 'utf8');

/** Feeds `chunks` through a fresh parser and returns everything it produced. */
function parse(chunks: Uint8Array[], end = true): unknown[] {
  const parser = new NdjsonParser();
  const out: unknown[] = [];
  for (const chunk of chunks) out.push(...parser.push(chunk));
  if (end) out.push(...parser.end());
  return out;
}

/** Cuts `bytes` at the given offsets. */
function cut(bytes: Uint8Array, offsets: number[]): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const at of [...offsets].sort((a, b) => a - b)) {
    parts.push(bytes.subarray(from, at));
    from = at;
  }
  parts.push(bytes.subarray(from));
  return parts;
}

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

describe('NdjsonParser', () => {
  test('one chunk with one message', () => {
    assert.deepEqual(parse([Buffer.from('{"a":1}\n')]), [{ a: 1 }]);
  });

  test('merged: many messages in one chunk come out in order', () => {
    assert.deepEqual(parse([STREAM]), MESSAGES);
  });

  test('split at every byte offset', () => {
    for (let at = 0; at <= STREAM.length; at++) {
      assert.deepEqual(parse(cut(STREAM, [at])), MESSAGES, `split at ${at}`);
    }
  });

  test('split at every pair of offsets', () => {
    const bytes = STREAM.subarray(0, STREAM.indexOf(0x0a, 200) + 1);
    const expected = parse([bytes]);
    assert.ok(expected.length >= 2);
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        assert.deepEqual(parse(cut(bytes, [i, j])), expected, `split at ${i} and ${j}`);
      }
    }
  });

  test('one byte per chunk: every UTF-8 character is split', () => {
    const chunks = [...STREAM].map((b) => Uint8Array.of(b));
    assert.deepEqual(parse(chunks), MESSAGES);
  });

  test('split inside each multi-byte character, at each of its bytes', () => {
    const text = Buffer.from(`${JSON.stringify({ s: 'é🔑ключ' })}\n`, 'utf8');
    for (let i = 0; i < text.length; i++) {
      if (text[i]! < 0x80) continue;
      assert.deepEqual(parse(cut(text, [i])), [{ s: 'é🔑ключ' }], `split at byte ${i}`);
    }
  });

  test('random chunkings of merged and split messages (seeded)', () => {
    const next = random(20_240_601);
    for (let round = 0; round < 300; round++) {
      const offsets = Array.from({ length: 1 + Math.floor(next() * 12) }, () =>
        Math.floor(next() * (STREAM.length + 1)),
      );
      assert.deepEqual(parse(cut(STREAM, offsets)), MESSAGES, `offsets ${offsets.join(',')}`);
    }
  });

  test('messages are returned by the push that completes them, not earlier', () => {
    const parser = new NdjsonParser();
    assert.deepEqual(parser.push(Buffer.from('{"a":')), []);
    assert.deepEqual(parser.push(Buffer.from('1}')), []);
    assert.deepEqual(parser.push(Buffer.from('\n{"b"')), [{ a: 1 }]);
    assert.deepEqual(parser.push(Buffer.from(':2}\n{"c":3}\n')), [{ b: 2 }, { c: 3 }]);
    assert.deepEqual(parser.end(), []);
  });

  test('blank lines, whitespace-only lines and CRLF endings are skipped', () => {
    const text = '\n\n{"a":1}\r\n   \n\t\n{"b":2}\n\n';
    assert.deepEqual(parse([Buffer.from(text)]), [{ a: 1 }, { b: 2 }]);
    assert.deepEqual(parse([...Buffer.from(text)].map((b) => Uint8Array.of(b))), [
      { a: 1 },
      { b: 2 },
    ]);
  });

  test('empty chunks change nothing', () => {
    const parser = new NdjsonParser();
    assert.deepEqual(parser.push(new Uint8Array(0)), []);
    assert.deepEqual(parser.push(Buffer.from('{"a"')), []);
    assert.deepEqual(parser.push(new Uint8Array(0)), []);
    assert.deepEqual(parser.push(Buffer.from(':1}\n')), [{ a: 1 }]);
    assert.deepEqual(parser.end(), []);
  });

  test('a last line without a newline is kept until end()', () => {
    const parser = new NdjsonParser();
    assert.deepEqual(parser.push(Buffer.from('{"a":1}\n{"b":2}')), [{ a: 1 }]);
    assert.deepEqual(parser.end(), [{ b: 2 }]);
    assert.deepEqual(parser.end(), [], 'end() twice gives nothing more');
  });

  test('plain Uint8Array chunks work like Buffers', () => {
    const chunks = cut(new Uint8Array(STREAM), [3, 50, 51, 140]).map((c) => new Uint8Array(c));
    assert.deepEqual(parse(chunks), MESSAGES);
  });

  test('a large message split into many chunks', () => {
    const big = {
      events: Array.from({ length: 5_000 }, (_, i) => ({ key: `k${i}`, v: 'ü'.repeat(50) })),
    };
    const bytes = Buffer.from(`${JSON.stringify(big)}\n${JSON.stringify({ after: true })}\n`);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += 65_521) chunks.push(bytes.subarray(i, i + 65_521));
    assert.ok(chunks.length > 5);
    assert.deepEqual(parse(chunks), [big, { after: true }]);
  });

  test('a chunk is not kept by reference: reusing its buffer does not corrupt a pending line', () => {
    const parser = new NdjsonParser();
    const buffer = Buffer.from('{"k":"abc"');
    assert.deepEqual(parser.push(buffer), []);
    buffer.fill(0x78); // the stream reader may reuse its buffer
    assert.deepEqual(parser.push(Buffer.from('}\n')), [{ k: 'abc' }]);
  });

  test('a line that is not JSON is a ProtocolError naming the line', () => {
    const parser = new NdjsonParser();
    assert.deepEqual(parser.push(Buffer.from('{"ok":1}\n')), [{ ok: 1 }]);
    assert.throws(
      () => parser.push(Buffer.from('<html>502 Bad Gateway</html>\n')),
      (err: unknown) => {
        assert.ok(err instanceof ProtocolError, String(err));
        assert.ok(err instanceof EtcdError);
        assert.equal(err.code, 'ETCDKIT_PROTOCOL');
        assert.equal(err.name, 'ProtocolError');
        assert.match(err.message, /502 Bad Gateway/);
        assert.ok(err.cause instanceof SyntaxError, 'the JSON error is the cause');
        return true;
      },
    );
  });

  test('messages before a bad line in the same chunk are returned; the error follows', () => {
    const parser = new NdjsonParser();
    const messages = parser.push(Buffer.from('{"a":1}\n{"b":2}\nnot json\n{"c":3}\n'));
    assert.deepEqual(messages, [{ a: 1 }, { b: 2 }]);
    assert.ok(parser.error instanceof ProtocolError);
    assert.match(parser.error.message, /not json/);
    assert.throws(() => parser.push(Buffer.from('{"d":4}\n')), ProtocolError);
    assert.throws(() => parser.end(), ProtocolError);
  });

  test('a bad line split across chunks fails when its newline arrives', () => {
    const parser = new NdjsonParser();
    assert.deepEqual(parser.push(Buffer.from('{"broken":')), []);
    assert.throws(() => parser.push(Buffer.from('}\n')), ProtocolError);
  });

  test('a truncated last line fails at end()', () => {
    const parser = new NdjsonParser();
    assert.deepEqual(parser.push(Buffer.from('{"a":1}\n{"b":')), [{ a: 1 }]);
    assert.throws(() => parser.end(), ProtocolError);
  });

  test('invalid UTF-8 bytes inside a string are replaced; the line still parses', () => {
    const parser = new NdjsonParser();
    const line = Buffer.concat([
      Buffer.from('{"s":"'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}\n'),
    ]);
    assert.deepEqual(parser.push(line), [{ s: '\ufffd\ufffd' }]);
  });
});
