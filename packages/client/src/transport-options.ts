/** The options of the transport, and those every call takes. */

export interface TlsOptions {
  /** Certificate authorities to trust, PEM. */
  ca?: string | Buffer | Array<string | Buffer> | undefined;
  /** Client certificate for `--client-cert-auth`, PEM. */
  cert?: string | Buffer | undefined;
  /** Private key of the client certificate, PEM. */
  key?: string | Buffer | undefined;
  /** Server name to verify, when it differs from the endpoint's host. */
  servername?: string | undefined;
  /** Verify the server certificate. Default true; turn off only for tests. */
  rejectUnauthorized?: boolean | undefined;
}

export interface CallOptions {
  /** Abort the call; it rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
  /** Deadline in milliseconds; 0 disables it. Defaults to the client's `timeout`. */
  timeout?: number | undefined;
}

export interface AuthOptions {
  user: string;
  password: string;
  /** Fetch a new token after this many ms, before etcd's token TTL (300 s by default) ends. Default 240,000. */
  refreshInterval?: number | undefined;
}

export interface TransportOptions {
  endpoints: string[];
  timeout: number;
  apiPrefix: string | undefined;
  tls: TlsOptions | undefined;
  connections: number;
  auth: AuthOptions | undefined;
}
