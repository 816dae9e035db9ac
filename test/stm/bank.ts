/**
 * A small bank for the STM tests: accounts hold whole numbers under
 * `account/<name>`, a transfer moves an amount between two of them in one STM
 * transaction and leaves a receipt under `receipt/<id>` in the same commit, so
 * a test can tell which transfers were applied.
 */
import assert from 'node:assert/strict';
import type { Etcd } from '@etcdkit/client';
import { type StmOptions, stm } from '@etcdkit/stm';

export const account = (name: string) => `account/${name}`;
export const receipt = (id: number) => `receipt/${id}`;

export async function openAccounts(etcd: Etcd, names: string[], balance: number): Promise<void> {
  for (const name of names) await etcd.set(account(name), balance);
}

/** Moves `amount` from one account to another; resolves false (and writes nothing) when funds are short. */
export function transfer(
  etcd: Etcd,
  id: number,
  from: string,
  to: string,
  amount: number,
  options: StmOptions = {},
): Promise<boolean> {
  return stm(
    etcd,
    async (tx) => {
      const source = Number(await tx.get(account(from)));
      const target = Number(await tx.get(account(to)));
      if (source < amount) return false;
      tx.put(account(from), source - amount);
      tx.put(account(to), target + amount);
      tx.put(receipt(id), { from, to, amount });
      return true;
    },
    options,
  );
}

/** Balances by account name, read at one revision. */
export async function balances(etcd: Etcd, names: string[]): Promise<Map<string, number>> {
  const { kvs } = await etcd.readdir('account/');
  const found = new Map(kvs.map((kv) => [kv.key.slice('account/'.length), Number(kv.value)]));
  assert.deepEqual([...found.keys()].sort(), [...names].sort());
  return found;
}

/** The ids of the transfers whose receipts exist. */
export async function receipts(etcd: Etcd): Promise<Set<number>> {
  const { kvs } = await etcd.readdir('receipt/', { keysOnly: true });
  return new Set(kvs.map((kv) => Number(kv.key.slice('receipt/'.length))));
}

/** Asserts that money was neither made nor lost and that no account went below zero. */
export async function assertConserved(etcd: Etcd, names: string[], total: number): Promise<void> {
  const found = await balances(etcd, names);
  const sum = [...found.values()].reduce((a, b) => a + b, 0);
  assert.equal(sum, total, `balances ${JSON.stringify([...found])} add up to ${sum}`);
  for (const [name, balance] of found) assert.ok(balance >= 0, `${name} holds ${balance}`);
}

/** A deterministic stream of numbers in [0, 1), so a failing run can be replayed. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}
