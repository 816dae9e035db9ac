/**
 * HTTP transport to etcd's JSON gateway.
 *
 * How it works: one undici Pool per endpoint keeps HTTP/1.1 connections alive.
 * A call is `POST <apiPrefix>/<service>/<method>` with a JSON body, one
 * request (`gatewayRequest`) per attempt; the life of a call (deadline, abort,
 * token, retries, failover) is `BaseTransport`'s. The API prefix is read once
 * from `GET /version` unless given. A 5xx page that is not etcd's (a proxy in
 * front of a dead member) marks the endpoint down like a refused connection;
 * a write moves on only after a 503. Streams are WebSockets
 * (gateway-stream.ts), or for watches with auth one streaming POST each
 * (`stream`, used by `HttpWatchHub`).
 */
import type { Pool } from 'undici';
import { untilAborted } from '../aborted.js';
import { BaseTransport } from '../base-transport.js';
import type { CallScope } from '../call-scope.js';
import { describeError } from '../describe-error.js';
import type { Endpoint } from '../endpoints.js';
import { ClientClosedError, EtcdError, UnavailableError } from '../errors.js';
import type { MessageStream, StreamMethod, Transport } from '../transport.js';
import type { CallOptions, TlsOptions, TransportOptions } from '../transport-options.js';
import { type Json, str } from '../wire.js';
import { apiPrefixFor } from './api-prefix.js';
import { type GatewayLink, gatewayLinks } from './gateway-links.js';
import { gatewayRequest, headersFor } from './gateway-request.js';
import { openGatewayStream } from './gateway-stream.js';

/** A path outside the API prefix (`/version`) is sent as a GET. */
const GET = '/';

export class GatewayTransport extends BaseTransport<GatewayLink, string> implements Transport {
  readonly name = 'gateway';
  /** The WebSocket proxy of etcd's gateway cannot pass a token on. */
  readonly streamsCarryToken = false;
  readonly #tls: TlsOptions | undefined;
  #apiPrefix: string | undefined;
  #detecting: Promise<string> | undefined;

  constructor(options: TransportOptions) {
    super(options, gatewayLinks(options.connections, options.tls));
    this.#tls = options.tls;
    this.#apiPrefix = options.apiPrefix;
  }

  protected encode(_method: string, body: Json): string {
    return JSON.stringify(body);
  }

  protected get ready(): boolean {
    return this.#apiPrefix !== undefined;
  }

  protected async prepare(scope: CallScope): Promise<void> {
    await untilAborted(this.#detect(), scope.signal);
  }

  protected attempt(
    endpoint: Endpoint<GatewayLink>,
    method: string,
    body: string,
    scope: CallScope,
    write: boolean,
    token: string | undefined,
  ): Promise<Json> {
    if (method.startsWith(GET)) {
      return gatewayRequest(endpoint, 'GET', method, undefined, token, write, scope);
    }
    const path = `${this.#apiPrefix}/${method}`;
    return gatewayRequest(endpoint, 'POST', path, body, token, write, scope);
  }

  /**
   * The API prefix in use, detecting it first if needed. Detection is shared by
   * concurrent callers and runs under the client's own deadline; each caller
   * only stops waiting for it on its own signal.
   */
  async apiPrefix(options: CallOptions = {}): Promise<string> {
    if (this.#apiPrefix !== undefined) return this.#apiPrefix;
    return this.withDeadline(options, (scope) => untilAborted(this.#detect(), scope.signal));
  }

  #detect(): Promise<string> {
    this.#detecting ??= this.#get('/version', {})
      .then((body) => {
        this.#apiPrefix = apiPrefixFor(str(body.etcdserver, 'etcdserver'));
        return this.#apiPrefix;
      })
      .finally(() => {
        this.#detecting = undefined;
      });
    return this.#detecting;
  }

  /** `GET /version`, outside the API prefix. */
  version(options: CallOptions): Promise<Json> {
    return this.#get('/version', options);
  }

  /** `GET path` (outside the API prefix), under the call's deadline, without a token. */
  #get(path: string, options: CallOptions): Promise<Json> {
    if (this.closing) return Promise.reject(new ClientClosedError('the client is closed'));
    return this.withDeadline(options, (scope) => this.send(path, '', scope, false, undefined));
  }

  /** Opens a WebSocket to `<apiPrefix>/<method>` on `url`. */
  async openStream(method: StreamMethod, url: string): Promise<MessageStream> {
    if (this.closing) throw new ClientClosedError('the client is closed');
    const prefix = await this.apiPrefix();
    return openGatewayStream(url, `${prefix}/${method}`, this.#tls);
  }

  /**
   * Opens a streaming `POST <apiPrefix>/<method>` on the current endpoint and
   * returns its body. No body timeout: the stream's owner watches for stalls.
   */
  async stream(
    method: string,
    body: Json,
    signal: AbortSignal,
    extraHeaders: Record<string, string> = {},
  ): Promise<{ body: AsyncIterable<Buffer>; url: string }> {
    if (this.closing) throw new ClientClosedError('the client is closed');
    const prefix = this.#apiPrefix ?? (await untilAborted(this.#detect(), signal));
    const token = await this.tokenFor({ signal });
    const endpoint = this.endpointSet.current;
    try {
      const res = await endpoint.link.streams.request({
        method: 'POST',
        path: `${prefix}/${method}`,
        body: JSON.stringify(body),
        headers: { ...headersFor(token), ...extraHeaders },
        signal,
        bodyTimeout: 0,
        headersTimeout: this.timeout || undefined,
      } as Parameters<Pool['request']>[0]);
      if (res.statusCode !== 200) {
        const text = await res.body.text();
        if (res.statusCode === 401 || text.includes('invalid auth token')) {
          this.token?.invalidate(token);
        }
        throw new UnavailableError(
          `${endpoint.url} answered ${res.statusCode}: ${text.slice(0, 200)}`,
        );
      }
      return { body: res.body, url: endpoint.url };
    } catch (err) {
      if (err instanceof EtcdError || signal.aborted) throw err;
      this.endpointSet.failed(endpoint, err as Error);
      // Typed as a read's failure would be: the stream could not be opened there.
      throw new UnavailableError(`${endpoint.url}: ${describeError(err)}`, { cause: err });
    }
  }
}
