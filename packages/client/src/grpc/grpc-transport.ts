/**
 * gRPC transport: etcd's own wire, HTTP/2 on the client port.
 *
 * How it works: one HTTP/2 session per endpoint (`GrpcLink`) carries every
 * call and stream to it. A call's body, in the same proto3 JSON form the
 * gateway takes, is encoded to protobuf once (`grpc-codec.ts`) and sent as the
 * gRPC method the gateway maps that path to (`grpc-methods.ts`); the answer is
 * decoded back to that form, so everything above the transport is unchanged.
 * The life of a call (deadline, abort, token, retries, failover) is
 * `BaseTransport`'s. Streams carry the auth token as metadata, so watches and
 * keepalives stay on one Watch and one LeaseKeepAlive stream with auth too;
 * watch streams ask etcd to end them when their member loses its leader.
 */
import { Client } from 'undici';
import { untilAborted } from '../aborted.js';
import { BaseTransport } from '../base-transport.js';
import type { CallScope } from '../call-scope.js';
import type { Endpoint } from '../endpoints.js';
import { ClientClosedError } from '../errors.js';
import type { MessageStream, StreamMethod, Transport } from '../transport.js';
import type { CallOptions, TlsOptions, TransportOptions } from '../transport-options.js';
import { asObject, type Json, str } from '../wire.js';
import type { GrpcLink } from './grpc-link.js';
import { grpcLinks } from './grpc-links.js';
import type { GrpcMethod } from './grpc-methods.js';

type GrpcCalls = typeof import('./grpc-calls.js');

/** A request encoded once: the method it goes to, looked up once, and its framed message. */
interface Encoded {
  readonly method: GrpcMethod;
  readonly frame: Buffer;
}

export class GrpcTransport extends BaseTransport<GrpcLink, Encoded> implements Transport {
  readonly name = 'grpc';
  readonly streamsCarryToken = true;
  readonly #tls: TlsOptions | undefined;
  /** The protobuf side, loaded before the first call (`prepare`). */
  #calls: GrpcCalls | undefined;
  #loading: Promise<GrpcCalls> | undefined;

  constructor(options: TransportOptions) {
    super(options, grpcLinks(options.tls));
    this.#tls = options.tls;
  }

  protected encode(method: string, body: Json): Encoded {
    const calls = this.#calls!;
    const grpc = calls.grpcMethod(method);
    return { method: grpc, frame: calls.encodeMessage(grpc, body) };
  }

  protected get ready(): boolean {
    return this.#calls !== undefined;
  }

  protected async prepare(scope: CallScope): Promise<void> {
    await untilAborted(this.#load(), scope.signal);
  }

  #load(): Promise<GrpcCalls> {
    this.#loading ??= import('./grpc-calls.js').then((calls) => {
      this.#calls = calls;
      return calls;
    });
    return this.#loading;
  }

  protected attempt(
    endpoint: Endpoint<GrpcLink>,
    _method: string,
    body: Encoded,
    scope: CallScope,
    write: boolean,
    token: string | undefined,
  ): Promise<Json> {
    return this.#calls!.grpcRequest(endpoint.link, body.method, body.frame, token, write, scope);
  }

  /**
   * The member's version from `Maintenance/Status`; the cluster's version is
   * only served by etcd's `GET /version`, asked of the member that answered.
   */
  async version(options: CallOptions): Promise<Json> {
    const status = await this.call('maintenance/status', {}, options, false);
    const url = this.currentEndpoint;
    let etcdcluster = '';
    const client = new Client(url, { connect: { ...(this.#tls ?? {}) } });
    try {
      const res = await client.request({
        method: 'GET',
        path: '/version',
        signal: options.signal ?? AbortSignal.timeout(this.timeout || 10_000),
      });
      etcdcluster = str(asObject(await res.body.json(), 'version').etcdcluster, 'etcdcluster');
    } catch {
      // A member behind an HTTP/2-only proxy: the cluster version stays unknown.
    } finally {
      await client.destroy();
    }
    return { etcdserver: status.version, etcdcluster };
  }

  /** A stream to `url` stalled or failed: its session is checked, then calls and streams move on. */
  override rotateFrom(url: string, error?: Error): void {
    this.endpointSet.list.find((e) => e.url === url)?.link.suspect();
    super.rotateFrom(url, error);
  }

  /** Opens `method`'s stream on `url`, with the token as metadata. */
  async openStream(method: StreamMethod, url: string): Promise<MessageStream> {
    if (this.closing) throw new ClientClosedError('the client is closed');
    const endpoint = this.endpointSet.list.find((e) => e.url === url) ?? this.endpointSet.current;
    const token = await this.tokenFor({ signal: AbortSignal.timeout(this.timeout || 10_000) });
    const calls = await this.#load();
    return calls.openGrpcStream(endpoint.link, calls.grpcMethod(method), {
      token,
      requireLeader: method === 'watch',
      tokenRefused: (refused) => this.token?.invalidate(refused),
    });
  }
}
