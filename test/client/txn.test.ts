// Transactions: the typed builder and the seed's raw txn(compare, success, failure).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Compare,
  type CompareOp,
  DuplicateKeyError,
  Etcd,
  type EtcdOptions,
  InvalidArgumentError,
  Op,
  type OpResult,
  type RawCompare,
  type RawOp,
  TooManyOpsError,
} from '@etcdkit/client';
import { type EtcdCluster, startEtcd, uniquePrefix } from '@etcdkit/harness';
import { holds, silentServer } from './helpers.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.close();
});

function connect(options: EtcdOptions = {}): Etcd {
  return new Etcd({ endpoints: etcd.endpoint, keyPrefix: uniquePrefix('txn'), ...options });
}

/** Narrows an operation's result to its type, failing the test otherwise. */
function as<T extends OpResult<unknown>['type']>(
  result: OpResult<unknown> | undefined,
  type: T,
): Extract<OpResult<unknown>, { type: T }> {
  assert.equal(result?.type, type);
  return result as Extract<OpResult<unknown>, { type: T }>;
}

/** For each operator: operands for which the comparison holds and for which it does not. */
type Table = Record<CompareOp, [holds: unknown[], fails: unknown[]]>;

async function checkTable(
  client: Etcd,
  make: (op: CompareOp, operand: unknown) => Compare,
  table: Table,
) {
  for (const [op, [yes, no]] of Object.entries(table) as Array<[CompareOp, Table[CompareOp]]>) {
    for (const operand of yes) {
      assert.equal(await holds(client, make(op, operand)), true, `${op} ${String(operand)} holds`);
    }
    for (const operand of no) {
      assert.equal(await holds(client, make(op, operand)), false, `${op} ${String(operand)} fails`);
    }
  }
}

describe('Compare', () => {
  test('value with = != < >', async () => {
    await using client = connect();
    await client.set('k', 'm');
    await checkTable(client, (op, v) => Compare.value('k', op, v), {
      '=': [['m'], ['x', 'M']],
      '!=': [['x'], ['m']],
      '<': [
        ['z', 'n'],
        ['a', 'm'],
      ],
      '>': [
        ['a', 'l'],
        ['z', 'm'],
      ],
    });
  });

  test('version with = != < >', async () => {
    await using client = connect();
    await client.set('k', 1);
    await client.set('k', 2);
    await checkTable(client, (op, v) => Compare.version('k', op, v as number), {
      '=': [
        [2, 2n],
        [1, 3],
      ],
      '!=': [[1, 3n], [2]],
      '<': [
        [3, 10n],
        [2, 1],
      ],
      '>': [
        [1, 0n],
        [2, 3],
      ],
    });
    // A missing key has version 0.
    assert.equal(await holds(client, Compare.version('missing', '=', 0)), true);
  });

  test('createRevision with = != < >', async () => {
    await using client = connect();
    const created = await client.set('k', 1);
    await client.set('k', 2);
    const c = created.revision;
    await checkTable(client, (op, v) => Compare.createRevision('k', op, v as bigint), {
      '=': [
        [c, Number(c)],
        [c + 1n, 0n],
      ],
      '!=': [[c + 1n, 0n], [c]],
      '<': [[c + 1n], [c, c - 1n]],
      '>': [
        [c - 1n, 0n],
        [c, c + 1n],
      ],
    });
    // A missing key was created at revision 0: the setnx guard.
    assert.equal(await holds(client, Compare.createRevision('missing', '=', 0n)), true);
  });

  test('modRevision with = != < >', async () => {
    await using client = connect();
    await client.set('k', 1);
    const m = (await client.set('k', 2)).revision;
    await checkTable(client, (op, v) => Compare.modRevision('k', op, v as bigint), {
      '=': [[m, Number(m)], [m - 1n]],
      '!=': [[m - 1n], [m]],
      '<': [[m + 1n], [m, m - 1n]],
      '>': [[m - 1n], [m, m + 1n]],
    });
  });

  test('lease with = != < >', async () => {
    await using client = connect();
    const lease = await client.grant(60);
    await client.set('k', 1, { lease: lease.id });
    await client.set('free', 1);
    const id = lease.id;
    await checkTable(client, (op, v) => Compare.lease('k', op, v as bigint), {
      '=': [[id], [0n, id + 1n]],
      '!=': [[0n, id + 1n], [id]],
      '<': [[id + 1n], [id, 0n]],
      '>': [[0n, id - 1n], [id]],
    });
    assert.equal(await holds(client, Compare.lease('free', '=', 0n)), true);
    assert.equal(await holds(client, Compare.lease('free', '>', 0n)), false);
    await client.revoke(lease.id);
  });

  test('every comparison must hold', async () => {
    await using client = connect();
    await client.set('a', 1);
    await client.set('b', 2);
    assert.equal(await holds(client, Compare.value('a', '=', 1), Compare.value('b', '=', 2)), true);
    assert.equal(
      await holds(client, Compare.value('a', '=', 1), Compare.value('b', '=', 3)),
      false,
    );
    assert.equal(await holds(client), true, 'no comparison holds trivially');
  });

  test('Compare.dir holds only if it holds for every key under the prefix', async () => {
    await using client = connect();
    const empty = Compare.dir(Compare.createRevision('queue/', '=', 0n));
    assert.equal(await holds(client, empty), true, 'nothing under queue/ yet');
    // A key that merely starts with the same letters is not under the prefix.
    await client.set('queue', 'next to it');
    assert.equal(await holds(client, empty), true);
    const first = await client.set('queue/a', 'x');
    await client.set('queue/b', 'x');
    assert.equal(await holds(client, empty), false, 'two keys under queue/');
    assert.equal(await holds(client, Compare.dir(Compare.value('queue/', '=', 'x'))), true);
    await client.set('queue/b', 'y');
    assert.equal(await holds(client, Compare.dir(Compare.value('queue/', '=', 'x'))), false);
    assert.equal(
      await holds(client, Compare.dir(Compare.createRevision('queue/', '>', first.revision))),
      false,
      'queue/a was created at that revision',
    );
    await client.rmdir('queue/');
    assert.equal(await holds(client, empty), true, 'empty again');
    assert.equal(
      await holds(client, Compare.dir(Compare.value('queue/', '=', 'x'))),
      false,
      'a value comparison on no key fails',
    );
  });

  test('an unknown operator or target is refused', async () => {
    await using client = connect();
    const bad = [
      { target: 'value', key: 'k', op: '<=', operand: 1 },
      { target: 'value', key: 'k', op: '==', operand: 1 },
      { target: 'key', key: 'k', op: '=', operand: 1 },
    ] as unknown as Compare[];
    for (const c of bad) {
      await assert.rejects(client.txn().if(c).commit(), InvalidArgumentError, JSON.stringify(c));
    }
    await assert.rejects(
      client
        .txn()
        .if(Compare.version('k', '=', 1.5))
        .commit(),
      InvalidArgumentError,
    );
  });
});

describe('txn builder', () => {
  test('success runs put, get, readdir, delete, rmdir and txn, with decoded results', async () => {
    await using client = connect();
    await client.set('guard', 'on');
    await client.set('put', 'old');
    await client.set('read', { r: 1 });
    await client.set('dir/a', 'A');
    await client.set('dir/b', 'B');
    await client.set('del', 'gone');
    await client.set('rm/a', 1);
    await client.set('rm/b', 2);
    const nested = client
      .txn()
      .if(Compare.value('guard', '=', 'on'))
      .success(Op.get('guard'));
    const r = await client
      .txn()
      .if(Compare.value('guard', '=', 'on'))
      .success(
        Op.put('put', 'new', { prevKv: true }),
        Op.get('read'),
        Op.readdir('dir/'),
        Op.delete('del', { prevKv: true }),
        Op.rmdir('rm/', { prevKv: true }),
        Op.txn([Compare.value('guard', '!=', 'on')], [Op.get('guard')], [Op.get('read')]),
        nested.toOp(),
      )
      .failure(Op.put('failed', true))
      .commit();
    assert.equal(r.succeeded, true);
    assert.equal(r.results.length, 7);
    assert.equal(typeof r.revision, 'bigint');

    const put = as(r.results[0], 'put');
    assert.equal(put.prevKv?.key, 'put');
    assert.equal(put.prevKv?.value, 'old');
    const get = as(r.results[1], 'range');
    assert.deepEqual(get.kvs[0]?.value, { r: 1 });
    assert.equal(get.count, 1);
    const dir = as(r.results[2], 'range');
    assert.deepEqual(
      dir.kvs.map((kv) => [kv.key, kv.value]),
      [
        ['dir/a', 'A'],
        ['dir/b', 'B'],
      ],
    );
    assert.equal(dir.count, 2);
    assert.equal(dir.more, false);
    const del = as(r.results[3], 'delete');
    assert.equal(del.deleted, 1);
    assert.deepEqual(
      del.prevKvs.map((kv) => [kv.key, kv.value]),
      [['del', 'gone']],
    );
    const rm = as(r.results[4], 'delete');
    assert.equal(rm.deleted, 2);
    assert.deepEqual(
      rm.prevKvs.map((kv) => kv.key),
      ['rm/a', 'rm/b'],
    );
    const inner = as(r.results[5], 'txn');
    assert.equal(inner.succeeded, false);
    assert.deepEqual(as(inner.results[0], 'range').kvs[0]?.value, { r: 1 });
    const built = as(r.results[6], 'txn');
    assert.equal(built.succeeded, true);
    assert.equal(as(built.results[0], 'range').kvs[0]?.value, 'on');

    // The writes happened, and the failure branch did not run.
    assert.equal((await client.get('put'))?.value, 'new');
    assert.equal(await client.get('del'), undefined);
    assert.equal((await client.readdir('rm/')).count, 0);
    assert.equal(await client.get('failed'), undefined);
    assert.equal((await client.get('put'))?.modRevision, r.revision);
  });

  test('failure runs when a comparison fails, with the same operations', async () => {
    await using client = connect();
    await client.set('guard', 'off');
    await client.set('x/1', 1);
    await client.set('y', 'y');
    const r = await client
      .txn()
      .if(Compare.value('guard', '=', 'on'))
      .success(Op.put('succeeded', true))
      .failure(
        Op.get('guard'),
        Op.put('failed', true, { prevKv: true }),
        Op.readdir('x/', { keysOnly: true }),
        Op.delete('y'),
        Op.rmdir('x/'),
        Op.txn([], [Op.put('nested', 1)]),
      )
      .commit();
    assert.equal(r.succeeded, false);
    assert.deepEqual(
      r.results.map((x) => x.type),
      ['range', 'put', 'range', 'delete', 'delete', 'txn'],
    );
    assert.equal(as(r.results[0], 'range').kvs[0]?.value, 'off');
    assert.equal(as(r.results[1], 'put').prevKv, undefined);
    const keysOnly = as(r.results[2], 'range');
    assert.equal(keysOnly.kvs[0]?.key, 'x/1');
    assert.equal(keysOnly.kvs[0]?.valueBytes.length, 0);
    assert.equal(as(r.results[3], 'delete').deleted, 1);
    assert.equal(as(r.results[4], 'delete').deleted, 1);
    assert.equal(as(r.results[5], 'txn').succeeded, true);
    assert.equal(as(as(r.results[5], 'txn').results[0], 'put').prevKv, undefined);
    assert.equal((await client.get('failed'))?.value, true);
    assert.equal((await client.get('nested'))?.value, 1);
    assert.equal(await client.get('succeeded'), undefined);
  });

  test('operation options reach etcd', async () => {
    await using client = connect();
    const lease = await client.grant(60);
    const old = await client.set('k', 'v1');
    await client.set('k', 'v2', { lease: lease.id });
    for (let i = 0; i < 4; i++) await client.set(`d/${i}`, i);
    const r = await client
      .txn()
      .success(
        Op.get('k', { revision: old.revision }),
        Op.readdir('d/', { limit: 2, sortOrder: 'descend' }),
        Op.readdir('d/', { countOnly: true }),
        Op.readdir('d/', { sortTarget: 'createRevision', sortOrder: 2, limit: 1 }),
        Op.put('k', undefined, { ignoreValue: true, ignoreLease: true, prevKv: true }),
        Op.put('other', 'x', { lease: lease.id }),
      )
      .commit();
    assert.equal(as(r.results[0], 'range').kvs[0]?.value, 'v1');
    const limited = as(r.results[1], 'range');
    assert.deepEqual(
      limited.kvs.map((kv) => kv.key),
      ['d/3', 'd/2'],
    );
    assert.equal(limited.more, true);
    assert.equal(limited.count, 4);
    const counted = as(r.results[2], 'range');
    assert.equal(counted.count, 4);
    assert.deepEqual(counted.kvs, []);
    assert.deepEqual(
      as(r.results[3], 'range').kvs.map((kv) => kv.key),
      ['d/3'],
    );
    assert.equal(as(r.results[4], 'put').prevKv?.value, 'v2');
    const k = await client.get('k');
    assert.equal(k?.value, 'v2');
    assert.equal(k?.lease, lease.id);
    assert.equal(k?.version, 3);
    assert.equal((await client.get('other'))?.lease, lease.id);
    await client.revoke(lease.id);
  });

  test('a read-only txn reports the current revision and writes nothing', async () => {
    await using client = connect();
    const w = await client.set('k', 1);
    const r = await client.txn().success(Op.get('k')).commit();
    assert.equal(r.revision, w.revision);
    assert.equal(r.succeeded, true);
  });

  test('a builder is not a promise and can be committed again', async () => {
    await using client = connect();
    const builder = client
      .txn()
      .if(Compare.createRevision('k', '=', 0))
      .success(Op.put('k', 1));
    assert.equal('then' in builder, false);
    assert.equal((await builder.commit()).succeeded, true);
    assert.equal((await builder.commit()).succeeded, false);
  });

  test('more than maxTxnOps operations reject with TooManyOpsError before sending', async () => {
    await using hung = await silentServer();
    await using offline = new Etcd({ endpoints: hung.url, apiPrefix: '/v3', timeout: 2000 });
    const puts = Array.from({ length: 129 }, (_, i) => Op.put(`k${i}`, i));
    const compares = Array.from({ length: 129 }, (_, i) => Compare.version(`k${i}`, '=', 0));
    await assert.rejects(
      offline
        .txn()
        .success(...puts)
        .commit(),
      TooManyOpsError,
    );
    await assert.rejects(
      offline
        .txn()
        .failure(...puts)
        .commit(),
      TooManyOpsError,
    );
    await assert.rejects(
      offline
        .txn()
        .if(...compares)
        .commit(),
      TooManyOpsError,
    );
    await assert.rejects(
      offline.txn().success(Op.txn([], puts)).commit(),
      TooManyOpsError,
      'inside a nested txn too',
    );
    assert.equal(hung.connections, 0, 'nothing was sent');

    await using client = connect();
    const r = await client
      .txn()
      .success(...puts.slice(0, 128))
      .commit();
    assert.equal(r.results.length, 128);
  });

  test('two puts of one key reject with DuplicateKeyError from etcd', async () => {
    await using client = connect();
    const err = await client
      .txn()
      .success(Op.put('k', 1), Op.put('k', 2))
      .commit()
      .then(
        () => assert.fail('the txn succeeded'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof DuplicateKeyError);
    assert.equal(err.code, 'ETCDKIT_DUPLICATE_KEY');
    assert.equal(err.grpcCode, 3);
    assert.equal(await client.get('k'), undefined);
  });

  test('unknown operation options are refused', async () => {
    await using client = connect();
    const bad = [
      Op.get('k', { prefix: true } as never),
      Op.readdir('k', { bogus: 1 } as never),
      Op.put('k', 1, { ttl: 5 } as never),
      Op.delete('k', { prefix: true } as never),
      Op.rmdir('k', { limit: 1 } as never),
    ];
    for (const op of bad) {
      await assert.rejects(client.txn().success(op).commit(), InvalidArgumentError);
    }
    await assert.rejects(client.txn().commit({ bogus: 1 } as never), InvalidArgumentError);
  });

  test('compares and operations use the keyPrefix', async () => {
    const prefix = uniquePrefix('txn');
    await using client = new Etcd({ endpoints: etcd.endpoint, keyPrefix: prefix });
    await using plain = new Etcd({ endpoints: etcd.endpoint });
    await client.set('k', 'v');
    const r = await client
      .txn()
      .if(Compare.value('k', '=', 'v'), Compare.version('k', '=', 1))
      .success(Op.put('k2', 'w'), Op.readdir(''))
      .commit();
    assert.equal(r.succeeded, true);
    assert.deepEqual(
      as(r.results[1], 'range').kvs.map((kv) => kv.key),
      ['k', 'k2'],
    );
    assert.equal((await plain.get(`${prefix}k2`))?.value, 'w');
  });
});

describe('raw txn (the seed form)', () => {
  test('the seed example: create "test" if it does not exist', async () => {
    await using client = connect();
    const compare: RawCompare[] = [{ target: 'CREATE', key: 'test', createRevision: 0 }];
    const success: RawOp[] = [{ requestPut: { key: 'test' } }];
    const r = await client.txn(compare, success);
    assert.equal(r.succeeded, true);
    const kv = await client.get('test');
    assert.ok(kv, 'the key was created');
    assert.equal(kv.valueBytes.length, 0, 'with an empty value, as in the seed');
    const again = await client.txn(compare, success);
    assert.equal(again.succeeded, false);
  });

  test('the seed example with a value, and undefined / null failure branches', async () => {
    await using client = connect();
    const compare: RawCompare[] = [{ target: 'CREATE', key: 'test', createRevision: 0 }];
    const r = await client.txn(compare, [{ requestPut: { key: 'test', value: 'v' } }]);
    assert.equal(r.succeeded, true);
    assert.equal(as(r.results[0], 'put').prevKv, undefined);
    assert.equal((await client.get('test'))?.value, 'v');
    const again = await client.txn(
      compare,
      [{ requestPut: { key: 'test', value: 'w' } }],
      undefined,
    );
    assert.equal(again.succeeded, false);
    assert.deepEqual(again.results, []);
    assert.equal((await client.get('test'))?.value, 'v');
  });

  test('every target and result, with requestRange, requestDeleteRange and requestTxn', async () => {
    await using client = connect();
    const lease = await client.grant(60);
    const first = await client.set('k', 'v1', { lease: lease.id });
    const second = await client.set('k', 'v2', { lease: lease.id });
    await client.set('d/a', 'A');
    await client.set('d/b', 'B');
    await client.set('gone', 1);
    const compare: RawCompare[] = [
      { target: 'VALUE', key: 'k', result: 'EQUAL', value: 'v2' },
      { target: 'VALUE', key: 'k', result: 'GREATER', value: 'v1' },
      { target: 'VERSION', key: 'k', result: 'GREATER', version: 1 },
      { target: 'VERSION', key: 'k', result: 'LESS', version: 3n },
      { target: 'CREATE', key: 'k', result: 'EQUAL', createRevision: first.revision },
      { target: 'MOD', key: 'k', result: 'NOT_EQUAL', modRevision: first.revision },
      { target: 'MOD', key: 'k', modRevision: second.revision },
      { target: 'LEASE', key: 'k', result: 'EQUAL', lease: lease.id },
      { target: 'LEASE', key: 'd/a', result: 'EQUAL', lease: 0n },
    ];
    const r = await client.txn(compare, [
      { requestRange: { key: 'k' } },
      { requestRange: { key: 'd/', prefix: true, limit: 1 } },
      { requestRange: { key: 'd/', prefix: true, countOnly: true } },
      { requestRange: { key: 'k', revision: first.revision } },
      { requestRange: { key: 'd/', prefix: true, keysOnly: true, serializable: true } },
      { requestDeleteRange: { key: 'gone', prevKv: true } },
      { requestDeleteRange: { key: 'd/', prefix: true } },
      { requestPut: { key: 'k', value: 'v3', prevKv: true, ignoreLease: true } },
      {
        requestTxn: {
          compare: [{ target: 'VALUE', key: 'k', value: 'nope' }],
          success: [{ requestPut: { key: 'wrong', value: 1 } }],
          failure: [{ requestRange: { key: 'k' } }, { requestPut: { key: 'n', value: 'N' } }],
        },
      },
    ]);
    assert.equal(r.succeeded, true);
    assert.equal(as(r.results[0], 'range').kvs[0]?.value, 'v2');
    const limited = as(r.results[1], 'range');
    assert.deepEqual(
      limited.kvs.map((kv) => kv.key),
      ['d/a'],
    );
    assert.equal(limited.more, true);
    assert.equal(as(r.results[2], 'range').count, 2);
    assert.equal(as(r.results[3], 'range').kvs[0]?.value, 'v1');
    assert.equal(as(r.results[4], 'range').kvs[1]?.valueBytes.length, 0);
    const gone = as(r.results[5], 'delete');
    assert.equal(gone.deleted, 1);
    assert.equal(gone.prevKvs[0]?.key, 'gone');
    assert.equal(as(r.results[6], 'delete').deleted, 2);
    assert.equal(as(r.results[7], 'put').prevKv?.value, 'v2');
    const nested = as(r.results[8], 'txn');
    assert.equal(nested.succeeded, false);
    // A txn's reads see the earlier writes of the same txn.
    assert.equal(as(nested.results[0], 'range').kvs[0]?.value, 'v3');

    const k = await client.get('k');
    assert.equal(k?.value, 'v3');
    assert.equal(k?.lease, lease.id);
    assert.equal((await client.get('n'))?.value, 'N');
    assert.equal(await client.get('wrong'), undefined);
    await client.revoke(lease.id);
  });

  test('a failing compare runs the failure branch', async () => {
    await using client = connect();
    await client.set('k', 1);
    const r = await client.txn(
      [{ target: 'VERSION', key: 'k', result: 'EQUAL', version: 5 }],
      [{ requestPut: { key: 'ok', value: 1 } }],
      [{ requestRange: { key: 'k' } }, { requestPut: { key: 'ko', value: 1 } }],
    );
    assert.equal(r.succeeded, false);
    assert.equal(as(r.results[0], 'range').kvs[0]?.value, 1);
    assert.equal(await client.get('ok'), undefined);
    assert.equal((await client.get('ko'))?.value, 1);
  });

  test('unknown fields, targets and results are refused with InvalidArgumentError', async () => {
    await using client = connect();
    const put: RawOp = { requestPut: { key: 'k', value: 1 } };
    const cases: Array<[string, () => Promise<unknown>]> = [
      [
        'compare field',
        () => client.txn([{ target: 'VALUE', key: 'k', value: 1, bogus: 1 } as never], [put]),
      ],
      [
        'compare key_prefix',
        () => client.txn([{ target: 'CREATE', key: 'k', create_revision: 0 } as never]),
      ],
      ['compare target', () => client.txn([{ target: 'KEY', key: 'k' } as never])],
      [
        'compare result',
        () => client.txn([{ target: 'VALUE', key: 'k', result: 'LESS_EQUAL', value: 1 } as never]),
      ],
      ['op name', () => client.txn([], [{ requestGet: { key: 'k' } } as never])],
      [
        'two requests',
        () =>
          client.txn(
            [],
            [{ requestPut: { key: 'k', value: 1 }, requestRange: { key: 'k' } } as never],
          ),
      ],
      ['no request', () => client.txn([], [{} as never])],
      [
        'put field',
        () => client.txn([], [{ requestPut: { key: 'k', value: 1, ttl: 5 } } as never]),
      ],
      [
        'range field',
        () => client.txn([], [{ requestRange: { key: 'k', range_end: 'z' } } as never]),
      ],
      [
        'delete field',
        () => client.txn([], [{ requestDeleteRange: { key: 'k', prev_kv: true } } as never]),
      ],
      [
        'txn field',
        () => client.txn([], [{ requestTxn: { compare: [], onSuccess: [] } } as never]),
      ],
      ['call option', () => client.txn([], [put], [], { bogus: 1 } as never)],
      ['not arrays', () => client.txn({} as never, [put])],
    ];
    for (const [name, call] of cases) {
      await assert.rejects(call(), InvalidArgumentError, name);
    }
    assert.equal(await client.get('k'), undefined, 'nothing was written');
  });
});
