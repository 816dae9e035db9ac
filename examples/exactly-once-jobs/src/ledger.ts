/**
 * The outside resource: a ledger that jobs are applied to, served over HTTP on
 * 127.0.0.1. etcd cannot fence it, so it protects itself, as any resource
 * behind a lock must:
 *
 * - Idempotency key: it records each job ID with the token that applied it
 *   and refuses a second apply of the same job, answering `duplicate` with
 *   the first token, so a caller that is unsure whether its apply landed can
 *   simply apply again.
 * - Fencing: per job, it refuses a token lower than the highest it has seen
 *   (`stale`), so a holder that lost its lock without noticing cannot act
 *   after the next holder did.
 *
 * Applied entries are kept in memory and, when a file is given, appended to
 * it as JSON lines: the ledger's own durable record.
 */
import { appendFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface LedgerEntry {
  job: string;
  /** The fencing token of the lock holder that applied the job. */
  token: string;
  /** Who applied it. */
  by: string;
}

export type ApplyResult =
  | { result: 'applied' | 'duplicate'; token: string }
  | { result: 'stale'; highest: string };

export class Ledger {
  /** Applied jobs by job ID. */
  readonly entries = new Map<string, LedgerEntry>();
  /** Second applies refused. */
  duplicates = 0;
  /** Applies refused for a token lower than one already seen for the job. */
  stale = 0;
  readonly #highest = new Map<string, bigint>();
  readonly #server: Server;
  readonly #file: string | undefined;
  #url = '';

  private constructor(file: string | undefined) {
    this.#file = file;
    this.#server = createServer((req, res) => void this.#serve(req, res));
  }

  /** Starts a ledger on a free 127.0.0.1 port, appending applied entries to `file` if given. */
  static async start(file?: string): Promise<Ledger> {
    const ledger = new Ledger(file);
    await new Promise<void>((resolve, reject) => {
      ledger.#server.once('error', reject);
      ledger.#server.listen(0, '127.0.0.1', resolve);
    });
    const address = ledger.#server.address();
    if (address === null || typeof address === 'string') throw new Error('no port assigned');
    ledger.#url = `http://127.0.0.1:${address.port}`;
    return ledger;
  }

  get url(): string {
    return this.#url;
  }

  apply(job: string, token: bigint, by: string): ApplyResult {
    const highest = this.#highest.get(job) ?? 0n;
    if (token < highest) {
      this.stale++;
      return { result: 'stale', highest: String(highest) };
    }
    this.#highest.set(job, token);
    const entry = this.entries.get(job);
    if (entry) {
      this.duplicates++;
      return { result: 'duplicate', token: entry.token };
    }
    const applied = { job, token: String(token), by };
    this.entries.set(job, applied);
    if (this.#file) appendFileSync(this.#file, `${JSON.stringify(applied)}\n`);
    return { result: 'applied', token: applied.token };
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body: Partial<Record<keyof LedgerEntry, unknown>> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString()) as typeof body;
    } catch {
      // answered as a bad request below
    }
    const { job, token, by } = body;
    if (
      req.url !== '/apply' ||
      typeof job !== 'string' ||
      typeof by !== 'string' ||
      typeof token !== 'string' ||
      !/^\d+$/.test(token)
    ) {
      res.writeHead(400).end();
      return;
    }
    const result = this.apply(job, BigInt(token), by);
    res.writeHead(result.result === 'stale' ? 409 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(result));
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

/** Applies `job` at the ledger at `url` with the holder's fencing token. */
export async function applyAt(
  url: string,
  job: string,
  token: bigint,
  by: string,
  signal?: AbortSignal,
): Promise<ApplyResult> {
  const res = await fetch(`${url}/apply`, {
    method: 'POST',
    body: JSON.stringify({ job, token: String(token), by }),
    ...(signal ? { signal } : {}),
  });
  if (res.status !== 200 && res.status !== 409) throw new Error(`ledger answered ${res.status}`);
  return (await res.json()) as ApplyResult;
}
