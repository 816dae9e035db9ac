/**
 * A fenced shared resource outside etcd, for the safety tests: a small HTTP
 * server on 127.0.0.1 in the test process that lock holders call when they
 * enter and leave their critical section, each time with their fencing token.
 *
 * It does what the docs ask of such a resource: it refuses a token lower than
 * the highest it has seen. It also keeps the record the tests judge by: every
 * accepted and refused call in arrival order, and every time a section was
 * entered while another one was still open (an overlap, which only a holder
 * that lost its lock without noticing may cause, and which fencing must then
 * contain).
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type FenceOp = 'enter' | 'exit';

export interface Section {
  token: bigint;
  worker: string;
  id: string;
  /** Position of the accepted enter in the checker's order of calls. */
  enterSeq: number;
  /** Position of the accepted exit, if the exit was accepted. */
  exitSeq: number | undefined;
  /** `performance.now()` of the accepted enter and exit. */
  enteredAt: number;
  exitedAt: number | undefined;
  /** Another section was entered while this one was open. */
  superseded: boolean;
}

export interface Refusal {
  op: FenceOp;
  token: bigint;
  worker: string;
  id: string;
  highest: bigint;
}

export interface CheckerEvents {
  /** A section was accepted; emitted before the caller gets its answer. */
  entered: [section: Section];
}

export class FenceChecker extends EventEmitter<CheckerEvents> {
  /** The highest token seen. */
  highest = 0n;
  /** Accepted sections by token, in order of entry. */
  readonly sections = new Map<bigint, Section>();
  readonly refused: Refusal[] = [];
  readonly overlaps: Array<{ open: bigint; entering: bigint }> = [];
  /** Calls that make no sense: an enter twice with one token, an exit without an enter. */
  readonly anomalies: string[] = [];
  #seq = 0;
  readonly #open = new Set<bigint>();
  readonly #server: Server;
  #url = '';

  private constructor() {
    super();
    this.#server = createServer((req, res) => void this.#serve(req, res));
  }

  static async start(): Promise<FenceChecker> {
    const checker = new FenceChecker();
    await new Promise<void>((resolve, reject) => {
      checker.#server.once('error', reject);
      checker.#server.listen(0, '127.0.0.1', resolve);
    });
    const address = checker.#server.address();
    if (address === null || typeof address === 'string') throw new Error('no port assigned');
    checker.#url = `http://127.0.0.1:${address.port}`;
    return checker;
  }

  get url(): string {
    return this.#url;
  }

  /** Sections whose exit was accepted. */
  get completed(): number {
    let n = 0;
    for (const s of this.sections.values()) if (s.exitSeq !== undefined) n++;
    return n;
  }

  /** Applies one call; returns whether it was accepted. */
  call(op: FenceOp, token: bigint, worker: string, id: string): boolean {
    if (token < this.highest) {
      this.refused.push({ op, token, worker, id, highest: this.highest });
      return false;
    }
    this.highest = token;
    const seq = ++this.#seq;
    if (op === 'enter') {
      if (this.sections.has(token)) {
        this.anomalies.push(`token ${token} entered twice (${id})`);
        return true;
      }
      for (const open of this.#open) {
        this.overlaps.push({ open, entering: token });
        const section = this.sections.get(open);
        if (section) section.superseded = true;
      }
      this.#open.clear();
      this.#open.add(token);
      const section: Section = {
        token,
        worker,
        id,
        enterSeq: seq,
        exitSeq: undefined,
        enteredAt: performance.now(),
        exitedAt: undefined,
        superseded: false,
      };
      this.sections.set(token, section);
      this.emit('entered', section);
      return true;
    }
    const section = this.sections.get(token);
    if (!section || !this.#open.has(token)) {
      this.anomalies.push(`exit of token ${token} that is not open (${id})`);
      return true;
    }
    section.exitSeq = seq;
    section.exitedAt = performance.now();
    this.#open.delete(token);
    return true;
  }

  /**
   * Checks the record: accepted sections never overlap (a section spans from
   * its accepted enter to its accepted exit, or only its enter if its exit was
   * refused), and accepted tokens strictly increase. Returns the violations.
   */
  violations(): string[] {
    const found = [...this.anomalies];
    let previous: Section | undefined;
    for (const section of this.sections.values()) {
      if (previous) {
        if (section.token <= previous.token) {
          found.push(`token ${section.token} accepted after ${previous.token}`);
        }
        const end = previous.exitSeq ?? previous.enterSeq;
        if (section.enterSeq <= end) {
          found.push(
            `accepted sections overlap: ${previous.id} (token ${previous.token}) and ${section.id} (token ${section.token})`,
          );
        }
      }
      previous = section;
    }
    return found;
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const op = req.url === '/enter' ? 'enter' : req.url === '/exit' ? 'exit' : undefined;
    let body: { token?: unknown; worker?: unknown; id?: unknown };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString()) as typeof body;
    } catch {
      body = {};
    }
    if (
      !op ||
      typeof body.token !== 'string' ||
      typeof body.worker !== 'string' ||
      typeof body.id !== 'string'
    ) {
      res.writeHead(400).end();
      return;
    }
    const ok = this.call(op, BigInt(body.token), body.worker, body.id);
    res.writeHead(ok ? 200 : 409, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok, highest: this.highest.toString() }));
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}
