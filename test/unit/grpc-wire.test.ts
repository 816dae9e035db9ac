// The gRPC transport's wire pieces, without etcd: gRPC framing across chunk
// boundaries, and the JSON form of etcd's messages, checked against
// @bufbuild/protobuf's own proto3 JSON conversion.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  create,
  equals,
  fromBinary,
  fromJson,
  type JsonValue,
  toBinary,
  toJson,
} from '@bufbuild/protobuf';
import {
  decodeMessage,
  encodeMessage,
  FrameReader,
  frame,
  grpcMethod,
} from '@etcdkit/client/internal/grpc-wire';

test('framed messages come out whole however the stream is cut', () => {
  const messages = [Buffer.alloc(0), Buffer.from('a'), Buffer.alloc(70_000, 3), Buffer.from('xyz')];
  const stream = Buffer.concat(messages.map((m) => frame(m)));
  for (const size of [1, 2, 5, 7, 4096, stream.length]) {
    const reader = new FrameReader();
    const out: Buffer[] = [];
    for (let at = 0; at < stream.length; at += size) {
      for (const m of reader.push(stream.subarray(at, at + size))) out.push(Buffer.from(m));
    }
    assert.deepEqual(out, messages, `chunks of ${size}`);
    assert.equal(reader.partial, false);
  }
  const cut = new FrameReader();
  cut.push(frame(Buffer.from('abc')).subarray(0, 6));
  assert.equal(cut.partial, true, 'a message cut short is noticed');
});

test('a compressed message is refused', () => {
  const compressed = frame(Buffer.from('x'));
  compressed[0] = 1;
  assert.throws(() => new FrameReader().push(compressed), /compressed/);
});

const requests: Array<[string, Record<string, unknown>]> = [
  ['kv/put', { key: 'YQ==', value: 'dmFsdWU=', lease: '7587868478427660083', prev_kv: true }],
  [
    'kv/range',
    { key: 'YQ==', range_end: 'AA==', limit: '10', sort_order: 'DESCEND', keys_only: true },
  ],
  [
    'kv/txn',
    {
      compare: [
        { key: 'YQ==', target: 'VALUE', result: 'EQUAL', value: 'eA==' },
        { key: 'YQ==', target: 'MOD', result: 'LESS', mod_revision: '0' },
        { key: 'Yg==', target: 'LEASE', lease: '5' },
      ],
      success: [
        { request_put: { key: 'YQ==', value: 'eQ==' } },
        { request_delete_range: { key: 'Yw==' } },
      ],
      failure: [{ request_range: { key: 'YQ==' } }, { request_txn: { success: [] } }],
    },
  ],
  ['lease/grant', { TTL: '15', ID: '0' }],
  ['lease/keepalive', { ID: '-1' }],
  [
    'watch',
    {
      create_request: {
        key: 'YQ==',
        range_end: 'Yg==',
        start_revision: '5',
        filters: ['NOPUT', 'NODELETE'],
        prev_kv: true,
        progress_notify: true,
        fragment: true,
        watch_id: '3',
      },
    },
  ],
  ['watch', { cancel_request: { watch_id: '3' } }],
  ['watch', { progress_request: {} }],
];

test('requests encode to the message @bufbuild/protobuf makes of their JSON form', () => {
  for (const [route, body] of requests) {
    const method = grpcMethod(route);
    const framed = encodeMessage(method, body);
    assert.equal(framed[0], 0, 'not compressed');
    assert.equal(framed.readUInt32BE(1), framed.length - 5, 'the prefix holds the length');
    const ours = fromBinary(method.input, framed.subarray(5));
    const reference = fromJson(method.input, body as JsonValue);
    const what = `${route} ${JSON.stringify(body)}`;
    assert.ok(equals(method.input, ours, reference), what);
    // Zero values stay off the wire, as @bufbuild/protobuf leaves them off.
    assert.equal(framed.length - 5, toBinary(method.input, reference).length, what);
  }
});

test('requests take bytes and int64 in either form', () => {
  const method = grpcMethod('kv/put');
  const asText = encodeMessage(method, { key: 'YQ==', value: 'eA==', lease: '7' });
  const asValues = encodeMessage(method, {
    key: Buffer.from('a'),
    value: new Uint8Array([0x78]),
    lease: 7n,
  });
  assert.deepEqual(asValues, asText);
});

test('an unknown field or enum value is refused before sending', () => {
  assert.throws(() => encodeMessage(grpcMethod('kv/put'), { kee: 'YQ==' }), /no field kee/);
  assert.throws(
    () => encodeMessage(grpcMethod('kv/range'), { key: 'YQ==', sort_order: 'SIDEWAYS' }),
    /no value SIDEWAYS/,
  );
});

/** The gateway's JSON form of a decoded answer: bytes in base64, int64 as decimal strings. */
function asGatewayJson(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return value.map(asGatewayJson);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, asGatewayJson(v)]));
  }
  return value;
}

test('answers decode to the JSON form @bufbuild/protobuf gives, zero values left out, bytes and int64 as values', () => {
  const range = grpcMethod('kv/range');
  const watch = grpcMethod('watch');
  const txn = grpcMethod('kv/txn');
  const answers = [
    [
      range,
      create(range.output, { header: { revision: 12n, memberId: 2n ** 63n + 5n }, count: 0n }),
    ],
    [
      range,
      create(range.output, {
        kvs: [{ key: Buffer.from('k'), value: new Uint8Array(0), version: 1n, lease: 9n }],
        more: true,
        count: 3n,
      }),
    ],
    [
      watch,
      create(watch.output, {
        watchId: -1n,
        created: true,
        canceled: true,
        cancelReason: 'etcdserver: no leader',
        compactRevision: 4n,
        fragment: true,
        events: [
          { type: 1, kv: { key: Buffer.from('d'), modRevision: 9n } },
          {
            type: 0,
            kv: { key: Buffer.from('p'), value: Buffer.from('v') },
            prevKv: { key: Buffer.from('p') },
          },
        ],
      }),
    ],
    [
      txn,
      create(txn.output, {
        succeeded: true,
        responses: [
          { response: { case: 'responsePut', value: { prevKv: { key: Buffer.from('a') } } } },
          { response: { case: 'responseDeleteRange', value: { deleted: 2n } } },
        ],
      }),
    ],
  ] as const;
  for (const [method, message] of answers) {
    const bytes = toBinary(method.output, message as never);
    const reference = toJson(method.output, fromBinary(method.output, bytes), {
      useProtoFieldName: true,
    });
    assert.deepEqual(asGatewayJson(decodeMessage(method, bytes)), reference, method.path);
  }
});

test('answers carry int64 as bigint and bytes as plain Uint8Array views', () => {
  const range = grpcMethod('kv/range');
  const bytes = toBinary(
    range.output,
    create(range.output, {
      header: { revision: 12n },
      kvs: [{ key: Buffer.from('k'), value: Buffer.from('v'), createRevision: 2n ** 62n }],
      count: 1n,
    }),
  );
  const json = decodeMessage(range, Buffer.from(bytes)) as {
    header: { revision: unknown };
    kvs: Array<{ key: unknown; create_revision: unknown }>;
  };
  assert.equal(json.header.revision, 12n);
  assert.equal(json.kvs[0]!.create_revision, 2n ** 62n);
  assert.equal(Object.getPrototypeOf(json.kvs[0]!.key), Uint8Array.prototype);
  assert.deepEqual(json.kvs[0]!.key, new Uint8Array([0x6b]));
});

test('an answer cut short or with a field overrunning its message is refused', () => {
  const range = grpcMethod('kv/range');
  const whole = toBinary(
    range.output,
    create(range.output, { kvs: [{ key: Buffer.from('key'), value: Buffer.from('value') }] }),
  );
  assert.throws(() => decodeMessage(range, whole.subarray(0, whole.length - 2)), /cannot decode/);
  // The kv claims one byte more than the message holds.
  const overrun = Uint8Array.from(whole);
  overrun[1] = overrun[1]! + 1;
  assert.throws(() => decodeMessage(range, overrun), /cannot decode/);
});

test('fields the descriptors do not know are skipped', () => {
  const range = grpcMethod('kv/range');
  const known = toBinary(range.output, create(range.output, { count: 3n }));
  // Field 99, varint 7, then the known fields.
  const withUnknown = Uint8Array.from([0x98, 0x06, 0x07, ...known]);
  assert.deepEqual(decodeMessage(range, withUnknown), { count: 3n });
});
