/**
 * The gRPC transport's connection to one endpoint: one HTTP/2 session that
 * every call and stream to that endpoint shares. Cleartext `http://` speaks
 * h2c with prior knowledge; `https://` negotiates `h2` by ALPN, with the
 * client's TLS settings (mTLS included).
 *
 * How it works: the session is opened on first use and replaced after it
 * closes, fails or is told to go away. A request waits for the session to be
 * connected before it is made, so a failure to connect proves the request was
 * never sent (a plain UnavailableError, never indeterminate), and a write can
 * move on to the next endpoint. The session holds the process open only while requests or
 * streams are in flight on it.
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import net, { type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { describeError } from '../describe-error.js';
import { UnavailableError } from '../errors.js';
import type { TlsOptions } from '../transport-options.js';

/** Give up connecting after this long, as undici does by default. */
const CONNECT_TIMEOUT_MS = 10_000;
/**
 * Flow-control windows: HTTP/2's default of 64 KiB would make a large range
 * or watch message wait for window updates; these let a few MiB flow at once.
 */
const STREAM_WINDOW = 4 * 1024 * 1024;
const SESSION_WINDOW = 16 * 1024 * 1024;
/** A suspect session that does not answer a ping within this long is cut. */
const PING_TIMEOUT_MS = 3_000;

export class GrpcLink {
  #session: ClientHttp2Session | undefined;
  #connected: Promise<ClientHttp2Session> | undefined;
  /** The socket of each session not yet closed, including sessions replaced after `suspect()`. */
  readonly #sockets = new Map<ClientHttp2Session, Socket>();
  /** Requests and streams in flight on each session: a session holds the process open only then. */
  readonly #active = new Map<ClientHttp2Session, number>();
  #closed = false;

  constructor(
    readonly url: string,
    readonly tls: TlsOptions | undefined,
  ) {}

  /** The connected session, or undefined while there is none: then wait for `connect()`. */
  get ready(): ClientHttp2Session | undefined {
    const session = this.#session;
    return session && !session.connecting && !session.closed && !session.destroyed
      ? session
      : undefined;
  }

  /** A connected session, opening one if needed. */
  connect(): Promise<ClientHttp2Session> {
    const ready = this.ready;
    if (ready) return Promise.resolve(ready);
    if (this.#closed) return Promise.reject(new UnavailableError('the link is closed'));
    this.#connected ??= this.#open().finally(() => {
      this.#connected = undefined;
    });
    return this.#connected;
  }

  /** The socket under a session, which the link opens itself so it can always cut it. */
  #socket(): Socket {
    const { hostname, port, protocol } = new URL(this.url);
    const host = hostname.replace(/^\[|\]$/g, '');
    if (protocol !== 'https:') return net.connect({ host, port: Number(port || 80) });
    const tls = this.tls ?? {};
    return tlsConnect({
      ...tls,
      host,
      port: Number(port || 443),
      ALPNProtocols: ['h2'],
      servername: tls.servername ?? (net.isIP(host) ? undefined : host),
    } as ConnectionOptions);
  }

  #open(): Promise<ClientHttp2Session> {
    return new Promise((resolve, reject) => {
      const socket = this.#socket();
      const session = http2.connect(this.url, {
        createConnection: () => socket,
        settings: { initialWindowSize: STREAM_WINDOW },
      });
      this.#session = session;
      this.#sockets.set(session, socket);
      const timer = setTimeout(() => {
        cut(session, socket, new UnavailableError(`connecting to ${this.url} timed out`));
      }, CONNECT_TIMEOUT_MS);
      session.once('connect', () => {
        clearTimeout(timer);
        if (session.destroyed) return;
        session.setLocalWindowSize(SESSION_WINDOW);
        if (!this.#active.has(session)) session.unref();
        resolve(session);
      });
      session.on('error', (err) => {
        clearTimeout(timer);
        // Before 'connect' nothing was sent; after it, each stream reports its own end.
        reject(new UnavailableError(`${this.url}: ${describeError(err)}`, { cause: err }));
      });
      session.once('close', () => {
        clearTimeout(timer);
        this.#sockets.delete(session);
        if (this.#session === session) this.#session = undefined;
        reject(new UnavailableError(`${this.url}: the connection closed`));
      });
      session.once('goaway', () => {
        // Streams already running finish; new ones go to a new session.
        if (this.#session === session) this.#session = undefined;
      });
    });
  }

  /** Makes a request on `session`, keeping the process open while it runs. */
  request(
    session: ClientHttp2Session,
    headers: http2.OutgoingHttpHeaders,
    endStream: boolean,
  ): ClientHttp2Stream {
    const stream = session.request(headers, { endStream });
    const active = this.#active.get(session) ?? 0;
    this.#active.set(session, active + 1);
    if (active === 0) session.ref();
    // 'close' comes once: a plain listener spares the wrapper `once` makes per stream.
    stream.on('close', () => {
      const left = (this.#active.get(session) ?? 1) - 1;
      if (left > 0) {
        this.#active.set(session, left);
        return;
      }
      this.#active.delete(session);
      if (!session.destroyed) session.unref();
    });
    return stream;
  }

  /**
   * Something on the session went unanswered. New calls get a new session;
   * the old one is closed once its streams end, and cut at once if it does not
   * answer a ping in time.
   */
  suspect(): void {
    const session = this.ready;
    if (!session) return;
    this.#session = undefined;
    const socket = this.#sockets.get(session);
    const timer = setTimeout(() => cut(session, socket), PING_TIMEOUT_MS);
    timer.unref();
    const sent = session.ping(() => clearTimeout(timer));
    if (!sent) {
      clearTimeout(timer);
      cut(session, socket);
      return;
    }
    session.close();
  }

  /** Closes the session: requests in flight get `graceMs` to finish, then it is cut. */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    this.#session = undefined;
    await Promise.all(
      [...this.#sockets].map(
        ([session, socket]) =>
          new Promise<void>((resolve) => {
            // A graceful close waits for the peer to close too, which a hung member never does.
            const timer = setTimeout(() => {
              cut(session, socket);
              resolve();
            }, graceMs);
            const done = () => {
              clearTimeout(timer);
              resolve();
            };
            session.once('close', done);
            if (!session.closed) session.close();
          }),
      ),
    );
    this.#sockets.clear();
  }
}

/** Ends `session` and its socket at once; streams on it end with an error. */
function cut(session: ClientHttp2Session, socket: Socket | undefined, error?: Error): void {
  session.destroy(error);
  socket?.destroy();
}
