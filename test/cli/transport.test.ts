// `--transport` chooses how etcdkit talks to etcd. A loopback proxy in front of
// the member tells the wire apart: it counts HTTP/1.1 requests, which the
// gateway sends for every call and gRPC never does, and HTTP/2 streams.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd } from '@etcdkit/client';
import {
  type EtcdCluster,
  type FaultProxy,
  startEtcd,
  startProxy,
  uniquePrefix,
} from '@etcdkit/harness';
import { cli } from './run-cli.js';

let etcd: EtcdCluster;
let proxy: FaultProxy;
before(async () => {
  etcd = await startEtcd();
  proxy = await startProxy(etcd.endpoint);
});
after(async () => {
  await proxy.close();
  await etcd.close();
});

const run = (args: string[], env: NodeJS.ProcessEnv = {}) => cli(proxy.url, args, { env }).done;

describe('etcdkit --transport', () => {
  test('put and get round-trip over gRPC, the flag before or after the command', async () => {
    const p = uniquePrefix('cli-grpc');
    const seen = proxy.requests(undefined, 'http1');
    const put = await run(['--transport', 'grpc', 'put', `${p}k`, 'over h2']);
    assert.equal(put.code, 0, put.err);
    assert.match(put.out, /^OK \(revision \d+\)/);
    const got = await run(['get', `${p}k`, '--transport=grpc', '--json']);
    assert.equal(got.code, 0, got.err);
    assert.equal((JSON.parse(got.out) as { value: string }).value, 'over h2');
    assert.equal(proxy.requests(undefined, 'http1') - seen, 0, 'gRPC sent an HTTP/1.1 request');
    assert.ok(proxy.requests('/etcdserverpb.KV/Put', 'h2') > 0, 'the put went over HTTP/2');
    // The same key through the gateway, and from the environment variable.
    const viaGateway = await run(['get', `${p}k`, '--transport', 'gateway']);
    assert.deepEqual([viaGateway.code, viaGateway.out], [0, 'over h2\n']);
    assert.ok(proxy.requests('/kv/range', 'http1') > 0, 'the gateway sent no range request');
    const fromEnv = await run(['get', `${p}k`], { ETCDKIT_TRANSPORT: 'grpc' });
    assert.deepEqual([fromEnv.code, fromEnv.out], [0, 'over h2\n']);
  });

  test('lock holds its lease and waits for its turn over gRPC streams', async () => {
    const name = uniquePrefix('cli-grpc-lock').slice(0, -1);
    const seen = proxy.requests(undefined, 'http1');
    const script =
      'console.log(process.env.ETCDKIT_FENCING_TOKEN, Date.now()); setTimeout(() => console.log(Date.now()), 300)';
    const results = await Promise.all(
      [1, 2].map(() =>
        run([
          'lock',
          name,
          '--transport',
          'grpc',
          '--ttl',
          '5',
          '--',
          process.execPath,
          '-e',
          script,
        ]),
      ),
    );
    for (const r of results) {
      assert.equal(r.code, 0, r.err);
      assert.match(r.err, /locked .* \(token \d+\)/);
    }
    // Each run printed its token and start time, then its end time: one after the other.
    const spans = results
      .map((r) => r.out.trim().split(/\s+/).map(Number))
      .sort((a, b) => a[1]! - b[1]!);
    assert.ok(spans[0]![2]! <= spans[1]![1]!, `overlap: ${JSON.stringify(spans)}`);
    assert.ok(spans[0]![0]! < spans[1]![0]!, `tokens did not increase: ${JSON.stringify(spans)}`);
    assert.equal(proxy.requests(undefined, 'http1') - seen, 0, 'gRPC sent an HTTP/1.1 request');
    await using client = new Etcd({ endpoints: etcd.endpoint });
    assert.equal((await client.readdir(`${name}/`)).count, 0);
  });

  test('an unknown transport is a usage error, from the flag or the environment', async () => {
    const flag = await run(['get', 'k', '--transport', 'http2']);
    assert.equal(flag.code, 2);
    assert.match(flag.err, /--transport must be gateway or grpc, got "http2"/);
    assert.match(flag.err, /usage: etcdkit get/);
    const leading = await run(['--transport', 'GRPC', 'put', 'k', 'v']);
    assert.equal(leading.code, 2);
    assert.match(leading.err, /--transport must be gateway or grpc, got "GRPC"/);
    const env = await run(['get', 'k'], { ETCDKIT_TRANSPORT: 'websocket' });
    assert.equal(env.code, 2);
    assert.match(env.err, /ETCDKIT_TRANSPORT must be gateway or grpc, got "websocket"/);
    // The flag wins over the environment.
    const flagWins = await run(['get', uniquePrefix('cli-none'), '--transport', 'grpc'], {
      ETCDKIT_TRANSPORT: 'websocket',
    });
    assert.equal(flagWins.code, 1);
    assert.match(flagWins.err, /not found/);
    const help = await run(['--help']);
    assert.match(help.out, /--transport NAME +ETCDKIT_TRANSPORT +gateway .* or grpc/);
  });
});
