/**
 * A loopback TCP proxy in front of one etcd member, for fault injection.
 *
 * How it works: the proxy listens on a free 127.0.0.1 port and opens one
 * upstream connection per accepted connection. Bytes are forwarded chunk by
 * chunk, and the current mode decides what happens to each chunk as it
 * arrives, so a mode change applies to live connections at once:
 * pass forwards, delay forwards after a pause (in order), blackhole swallows,
 * dropResponses closes the connection when the answer to a matching request
 * starts to come back. reset and refuse act on connections rather than bytes.
 * It forwards bytes, not HTTP messages, so WebSockets pass through it too,
 * and so does HTTP/2 (gRPC), pings and settings included, exactly as the
 * member sent them. Requests are only read as they pass, to count them and
 * match paths: request lines on HTTP/1.1, and on a connection that opens with
 * the HTTP/2 preface, each stream's `:path` from its HEADERS frame. A path
 * matches under its own name and under its counterpart on the other transport
 * (`/etcdserverpb.KV/Range` and `/v3/kv/range`), so tests match either way.
 */
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { ConnectionPeek, type RequestNames } from './peek.js';

export type ProxyMode = 'pass' | 'delay' | 'blackhole' | 'reset' | 'refuse' | 'dropResponses';

export interface DropResponsesOptions {
  /** Only answers to requests whose path contains this string or matches this pattern. Default: all. */
  match?: string | RegExp;
  /** Drop this many answers, then forward again (the mode stays). Default: no limit. */
  times?: number;
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: give it to clients instead of the member's URL. */
  readonly url: string;
  readonly port: number;
  /** The member's URL that new connections are forwarded to. */
  readonly target: string;
  /** Forwards connections accepted from now on to `url`; live ones keep their member. */
  retarget(url: string): void;
  readonly mode: ProxyMode;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Connections open right now. */
  readonly live: number;
  /** Answers dropped by `dropResponses` so far. */
  readonly dropped: number;
  /**
   * Requests seen so far whose path contains `match` (all when absent): HTTP/1.1
   * requests and HTTP/2 streams (each gRPC call, including a Watch or a
   * LeaseKeepAlive stream, is one), under either name of their path. With
   * `protocol`, only those that came over HTTP/1.1 (`'http1'`) or HTTP/2 (`'h2'`).
   */
  requests(match?: string | RegExp, protocol?: 'http1' | 'h2'): number;
  /** Forwards everything; listens again after `refuse()`. */
  pass(): Promise<void>;
  /**
   * Forwards each chunk `ms` after it arrived, in both directions. With
   * `'frames'`, requests pass at once and so does the first chunk each
   * connection gets back (its handshake answer: the WebSocket upgrade, or the
   * member's HTTP/2 settings); only later answers wait: a stream that opens
   * fine and then answers late. Chunks already delayed arrive even after a
   * mode change.
   */
  delay(ms: number, which?: 'both' | 'frames'): Promise<void>;
  /**
   * Accepts connections and swallows bytes both ways, answering nothing, like
   * a partitioned or frozen member. A connection that lost bytes this way is
   * closed when the blackhole ends, since its stream cannot continue.
   */
  blackhole(): Promise<void>;
  /** Resets live connections (RST) and every new one as soon as it is accepted. */
  reset(): Promise<void>;
  /** Stops listening, so connects are refused, and resets live connections: a member that exited. */
  refuse(): Promise<void>;
  /** Closes every live connection once; new connections are served by the current mode. */
  cut(): void;
  /**
   * Forwards requests, then closes the connection as soon as the answer to a
   * matching request starts to come back: the request was applied, its answer lost.
   * On HTTP/2 that is the first frame of a matching stream's answer (its
   * headers, or later data of a long-lived stream), and the whole connection
   * closes with every other stream on it, as a lost connection would.
   */
  dropResponses(options?: DropResponsesOptions): Promise<void>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface Link {
  client: Socket;
  /** Undefined for a connection accepted during a blackhole: it never reaches the member. */
  upstream: Socket | undefined;
  /** Bytes were swallowed: the stream is broken for good. */
  lost: boolean;
  /** Reads the requests on this connection and tells which one each answer chunk belongs to. */
  peek: ConnectionPeek;
  /**
   * Chunks held back in each direction, oldest first, each with the time it is
   * due. One timer per direction writes them in this order: separate timers of
   * different lengths may fire out of order on a busy event loop, which would
   * reorder the stream.
   */
  held: { up: Held[]; down: Held[] };
  /** The timer that writes the held chunks of each direction, if one is set. */
  drain: { up: NodeJS.Timeout | undefined; down: NodeJS.Timeout | undefined };
  /** Chunks the member has sent back on this connection so far. */
  answered: number;
}

interface Held {
  chunk: Buffer;
  due: number;
}

function matches(names: RequestNames, match: string | RegExp | undefined): boolean {
  if (match === undefined) return true;
  return names.some((name) =>
    typeof match === 'string' ? name.includes(match) : match.test(name),
  );
}

/** Starts a proxy on a free 127.0.0.1 port in front of `target` (`http://127.0.0.1:<port>`). */
export async function startProxy(target: string): Promise<FaultProxy> {
  let member = { target, host: '', port: 0 };
  const setTarget = (url: string) => {
    const parsed = new URL(url);
    member = { target: url, host: parsed.hostname, port: Number(parsed.port) };
  };
  setTarget(target);
  const links = new Set<Link>();
  const timers = new Set<NodeJS.Timeout>();
  const requests: Array<{ names: RequestNames; protocol: string }> = [];
  let mode: ProxyMode = 'pass';
  let delayMs = 0;
  /** `delay(ms, 'frames')`: requests and handshake answers pass at once, later answers wait. */
  let framesOnly = false;
  let drop: DropResponsesOptions = {};
  let dropsLeft = Number.POSITIVE_INFINITY;
  let connections = 0;
  let dropped = 0;
  let closed = false;

  const destroy = (link: Link, hard = false) => {
    links.delete(link);
    if (hard) link.client.resetAndDestroy();
    else link.client.destroy();
    link.upstream?.destroy();
  };

  /** Writes `chunk` to `to`, after `wait` ms and after every chunk still held in that direction. */
  const forward = (link: Link, direction: 'up' | 'down', chunk: Buffer, wait: number) => {
    const to = direction === 'up' ? link.upstream : link.client;
    if (!to) {
      link.lost = true;
      return;
    }
    const held = link.held[direction];
    const now = performance.now();
    if (held.length === 0 && wait <= 0) {
      to.write(chunk);
      return;
    }
    held.push({ chunk, due: Math.max(now + wait, held.at(-1)?.due ?? 0) });
    if (link.drain[direction] === undefined) drainLater(link, direction, to);
  };

  /** Sets the one timer of a direction for its oldest held chunk; it writes every chunk due by then, in order. */
  const drainLater = (link: Link, direction: 'up' | 'down', to: Socket) => {
    const held = link.held[direction];
    const first = held[0];
    if (!first) return;
    const timer = setTimeout(
      () => {
        timers.delete(timer);
        link.drain[direction] = undefined;
        const now = performance.now();
        while (held.length > 0 && held[0]!.due <= now) {
          const next = held.shift()!;
          if (!to.destroyed) to.write(next.chunk);
        }
        drainLater(link, direction, to);
      },
      Math.max(0, first.due - performance.now()),
    );
    timers.add(timer);
    link.drain[direction] = timer;
  };

  const fromClient = (link: Link, chunk: Buffer) => {
    for (const names of link.peek.requests(chunk)) {
      requests.push({ names, protocol: link.peek.protocol });
    }
    if (mode === 'blackhole') link.lost = true;
    else forward(link, 'up', chunk, mode === 'delay' && !framesOnly ? delayMs : 0);
  };

  const fromUpstream = (link: Link, chunk: Buffer) => {
    // Read every chunk, forwarded or not, to stay in step with the frames.
    const answers = link.peek.answers(chunk);
    if (mode === 'blackhole') {
      link.lost = true;
      return;
    }
    const dropping = mode === 'dropResponses' && dropsLeft > 0;
    if (dropping && answers.some((names) => matches(names, drop.match))) {
      dropsLeft--;
      dropped++;
      destroy(link);
      return;
    }
    const first = link.answered++ === 0;
    forward(link, 'down', chunk, mode === 'delay' && !(framesOnly && first) ? delayMs : 0);
  };

  const accept = (client: Socket) => {
    connections++;
    client.on('error', () => undefined);
    if (mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    const link: Link = {
      client,
      upstream: undefined,
      lost: false,
      peek: new ConnectionPeek(),
      held: { up: [], down: [] },
      drain: { up: undefined, down: undefined },
      answered: 0,
    };
    links.add(link);
    if (mode !== 'blackhole') {
      const upstream = connect({ host: member.host, port: member.port });
      upstream.setNoDelay(true);
      upstream.on('error', () => undefined);
      upstream.on('data', (chunk: Buffer) => fromUpstream(link, chunk));
      upstream.on('close', () => destroy(link));
      link.upstream = upstream;
    }
    client.on('data', (chunk: Buffer) => fromClient(link, chunk));
    client.on('close', () => destroy(link));
  };

  const server: Server = createServer(accept);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port assigned');
  const port = address.port;

  const listen = async () => {
    if (server.listening || closed) return;
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
  };

  const stopListening = async () => {
    if (!server.listening) return;
    const done = once(server, 'close');
    server.close();
    for (const link of [...links]) destroy(link, true);
    await done;
  };

  const setMode = async (next: ProxyMode) => {
    if (closed) throw new Error('the proxy is closed');
    // Leaving a blackhole: connections that lost bytes (or never had a member) cannot go on.
    if (mode === 'blackhole' && next !== 'blackhole') {
      for (const link of [...links]) if (link.lost || !link.upstream) destroy(link);
    }
    mode = next;
    if (next === 'reset') for (const link of [...links]) destroy(link, true);
    if (next === 'refuse') await stopListening();
    else await listen();
  };

  const close = async () => {
    if (closed) return;
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    await stopListening();
    closed = true;
    for (const link of [...links]) destroy(link);
  };

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get target() {
      return member.target;
    },
    retarget: setTarget,
    get mode() {
      return mode;
    },
    get connections() {
      return connections;
    },
    get live() {
      return links.size;
    },
    get dropped() {
      return dropped;
    },
    requests: (match, protocol) =>
      requests.filter(
        (r) => matches(r.names, match) && (protocol === undefined || r.protocol === protocol),
      ).length,
    pass: () => setMode('pass'),
    delay: (ms, which = 'both') => {
      if (!(Number.isFinite(ms) && ms >= 0)) {
        return Promise.reject(new RangeError(`delay must be a number of ms >= 0, got ${ms}`));
      }
      delayMs = ms;
      framesOnly = which === 'frames';
      return setMode('delay');
    },
    blackhole: () => setMode('blackhole'),
    reset: () => setMode('reset'),
    refuse: () => setMode('refuse'),
    cut() {
      for (const link of [...links]) destroy(link);
    },
    dropResponses: (options = {}) => {
      drop = options;
      dropsLeft = options.times ?? Number.POSITIVE_INFINITY;
      return setMode('dropResponses');
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
