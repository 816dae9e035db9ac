/**
 * The seam between the client and the wire. Everything above it (kv, txn,
 * lease, watch, sessions, and the packages built on the client) speaks etcd's
 * messages in their proto3 JSON form, snake_case field names as the gateway
 * writes them; a transport carries them:
 *
 * - `gateway` (gateway/): etcd's JSON gateway over HTTP/1.1, WebSockets for
 *   streams. The default, and what the seed speaks.
 * - `grpc` (grpc/): etcd's own gRPC over HTTP/2 on the same client port,
 *   protobuf on the wire; every watcher of a client on one Watch stream and
 *   every keepalive on one LeaseKeepAlive stream, the auth token as metadata.
 *
 * Both give the same typed errors, the same safe-retry and indeterminate
 * rules, deadlines, aborts, endpoint health and failover.
 */
import type { EndpointSet } from './endpoints.js';
import type { CallOptions } from './transport-options.js';
import type { Json } from './wire.js';

export type {
  AuthOptions,
  CallOptions,
  TlsOptions,
  TransportOptions,
} from './transport-options.js';

export type TransportName = 'gateway' | 'grpc';
export const TRANSPORTS: readonly TransportName[] = ['gateway', 'grpc'];

/** The two bidirectional streams the client keeps: all watchers on one, all keepalives on the other. */
export type StreamMethod = 'watch' | 'lease/keepalive';

/**
 * One bidirectional stream of messages. The owner sets the handlers right
 * after it is opened; nothing arrives before.
 */
export interface MessageStream {
  /** The stream is open: requests may be sent. */
  onopen: (() => void) | null;
  /** One message, as the gateway frames it: `{ result }` or `{ error }`. */
  onmessage: ((message: Json) => void) | null;
  /** The stream ended or failed; it sends and delivers nothing more. */
  onclose: ((error: Error) => void) | null;
  /** Sends one request; throws when the stream can take no more. */
  send(message: Json): void;
  /** Ends the stream politely (a hung peer is cut after a moment). */
  close(): void;
  /** Cuts the stream at once. */
  destroy(): void;
}

export interface Transport {
  readonly name: TransportName;
  /** Endpoints and their health; `on('endpoint-down' | 'endpoint-up')` reports changes. */
  readonly endpointSet: EndpointSet;
  readonly endpoints: string[];
  /** The endpoint calls and streams go to first: the last one that answered. */
  readonly currentEndpoint: string;
  readonly closed: boolean;
  /** The client's deadline for each call in ms (0: none). */
  readonly timeout: number;
  /** The client authenticates (calls carry a token). */
  readonly authenticated: boolean;
  /** Streams can carry the auth token (gRPC metadata can; the gateway's WebSocket cannot). */
  readonly streamsCarryToken: boolean;

  /** Calls `method` (a gateway path such as `kv/range`) with `body`; `write` marks state changes. */
  call(method: string, body: Json, options: CallOptions, write: boolean): Promise<Json>;
  /** etcd's version: `{ etcdserver, etcdcluster }`. */
  version(options: CallOptions): Promise<Json>;
  /** Opens `method`'s stream to `url`; rejects when it cannot even be started there. */
  openStream(method: StreamMethod, url: string): Promise<MessageStream>;
  /** Moves streams and calls on to the next endpoint after `url` failed. */
  rotateFrom(url: string, error?: Error): void;
  /** etcd called the current token invalid somewhere a call cannot retry (a stream): drop it. */
  tokenRefused(): void;
  /** Whether the member at `url` reports a raft leader; only an explicit "no leader" is false. */
  hasLeader(url: string): Promise<boolean>;
  /** Whether the member at `url` answers at all within `ms`. */
  answers(url: string, ms: number): Promise<boolean>;
  /** New calls, streams and probes are refused from now on, except lease revokes. */
  beginClose(): void;
  close(): Promise<void>;
}
