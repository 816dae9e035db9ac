// The client's value type follows its codec; writes of other types do not compile;
// every coordination package takes a client of any value type.
import {
  type Codec,
  createClient,
  Etcd,
  type EtcdOptions,
  type JsonValue,
  type KeyValue,
} from '@etcdkit/client';
import { Election } from '@etcdkit/election';
import { Mutex, RWMutex, Semaphore } from '@etcdkit/mutex';
import { Registry } from '@etcdkit/registry';
import { expectType } from './expect.js';

declare const dateCodec: Codec<Date>;
type Config = { port: number; tags: string[]; owner: string | null };

export async function valueTypes(): Promise<void> {
  // json, the default
  const json = createClient();
  expectType<Etcd<JsonValue>>()(json);
  expectType<KeyValue<JsonValue> | undefined>()(await json.get('k'));
  await json.set('k', { nested: [1, 'two', null, true] });
  // @ts-expect-error JSON cannot hold a bigint
  await json.set('k', 10n);
  // @ts-expect-error nor undefined, unless ignoreValue keeps the stored value
  await json.set('k', undefined);
  await json.set('k', undefined, { ignoreValue: true });
  // @ts-expect-error nor a Date
  await json.setnx('k', new Date());
  // @ts-expect-error nor a function
  await json.setx('k', () => 1);

  // json with a value type of one's own
  const config = createClient<Config>({ endpoints: 'http://127.0.0.1:2379' });
  expectType<Config | undefined>()((await config.get('k'))?.value);
  await config.set('k', { port: 80, tags: [], owner: null });
  // @ts-expect-error port is a number
  await config.set('k', { port: '80', tags: [], owner: null });
  // @ts-expect-error only JSON values can go through the json codec
  createClient<bigint>();
  // @ts-expect-error unknown values need a codec that takes them
  createClient<unknown>();

  // string
  const text = createClient({ codec: 'string' });
  expectType<Etcd<string>>()(text);
  expectType<KeyValue<string> | undefined>()(await text.get('k'));
  // @ts-expect-error the string codec stores strings
  await text.set('k', 1);

  // bytes
  const bytes = createClient({ codec: 'bytes' });
  expectType<Etcd<Uint8Array>>()(bytes);
  await bytes.set('k', new Uint8Array([1, 2]));
  // @ts-expect-error the bytes codec stores Uint8Array
  await bytes.set('k', 'text');

  // a custom codec
  const dates = createClient({ codec: dateCodec });
  expectType<Etcd<Date>>()(dates);
  expectType<Date | undefined>()((await dates.get('k'))?.value);
  // @ts-expect-error the codec takes dates
  await dates.set('k', 'tomorrow');
}

export function constructorMatchesCreateClient(): void {
  expectType<Etcd<JsonValue>>()(new Etcd());
  expectType<Etcd<Config>>()(new Etcd<Config>({}));
  expectType<Etcd<string>>()(new Etcd({ codec: 'string' }));
  expectType<Etcd<string>>()(new Etcd<string>({ codec: 'string' }));
  expectType<Etcd<Uint8Array>>()(new Etcd({ codec: 'bytes' }));
  expectType<Etcd<Date>>()(new Etcd({ codec: dateCodec }));
  // @ts-expect-error the string codec cannot serve numbers
  new Etcd<number>({ codec: 'string' });
  // @ts-expect-error nor can the json codec serve dates
  new Etcd<Date>({ codec: 'json' });
  // @ts-expect-error a codec of dates does not make a client of strings
  new Etcd<string>({ codec: dateCodec });
}

/** Options passed through a helper keep the default json typing. */
export function forwardedOptions(options: EtcdOptions = {}): Etcd {
  return new Etcd({ endpoints: 'http://127.0.0.1:2379', ...options });
}

/** Every package that takes a client takes one of any value type, generic ones too. */
export function anyClient<V>(generic: Etcd<V>): void {
  const clients = [
    createClient(),
    createClient<Config>(),
    createClient({ codec: 'string' }),
    createClient({ codec: 'bytes' }),
    createClient({ codec: dateCodec }),
    generic,
  ];
  for (const client of clients) {
    new Mutex(client, 'lock');
    new RWMutex(client, 'rw');
    new Semaphore(client, 'pool', 2);
    new Election(client, 'leader');
    new Registry(client);
  }
  new Mutex(generic, 'lock');
  new Election(generic, 'leader');
  new Registry(generic);
}
