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
import { describeError } from '../describe-error.js';
import { UnavailableError } from '../errors.js';
import type { TlsOptions } from '../transport-options.js';

/** Give up connecting after this long, as undici does by default. */
const CONNECT_TIMEOUT_MS = 10_000;

export class GrpcLink {
  #session: ClientHttp2Session | undefined;
  #connected: Promise<ClientHttp2Session> | undefined;
  #active = 0;
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

  #open(): Promise<ClientHttp2Session> {
    return new Promise((resolve, reject) => {
      const session = http2.connect(this.url, {
        ...(this.tls ?? {}),
        ...(this.url.startsWith('https:') ? { ALPNProtocols: ['h2'] } : {}),
      });
      this.#session = session;
      const timer = setTimeout(() => {
        session.destroy(new UnavailableError(`connecting to ${this.url} timed out`));
      }, CONNECT_TIMEOUT_MS);
      session.once('connect', () => {
        clearTimeout(timer);
        if (this.#active === 0) session.unref();
        resolve(session);
      });
      session.on('error', (err) => {
        clearTimeout(timer);
        // Before 'connect' nothing was sent; after it, each stream reports its own end.
        reject(new UnavailableError(`${this.url}: ${describeError(err)}`, { cause: err }));
      });
      session.once('close', () => {
        clearTimeout(timer);
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
    if (this.#active++ === 0) session.ref();
    stream.once('close', () => {
      if (--this.#active === 0 && !session.destroyed) session.unref();
    });
    return stream;
  }

  /** Closes the session: requests in flight get `graceMs` to finish, then it is cut. */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    const session = this.#session;
    this.#session = undefined;
    if (!session || session.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => session.destroy(), graceMs);
      session.close(() => {
        clearTimeout(timer);
        resolve();
      });
      session.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Cuts the session at once; streams on it end with an error. */
  destroy(): void {
    const session = this.#session;
    this.#session = undefined;
    session?.destroy();
  }
}
