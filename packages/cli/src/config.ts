/**
 * Connection settings shared by every command: flags first, then ETCDKIT_*
 * environment variables, then defaults.
 */
import { readFileSync } from 'node:fs';
import { type Etcd, Etcd as EtcdClient, type EtcdOptions } from '@etcdkit/client';

export const CONNECTION_FLAGS = {
  endpoints: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  insecure: { type: 'boolean' },
  timeout: { type: 'string' },
  transport: { type: 'string' },
} as const;

export const CONNECTION_HELP = `Connection (flag before or after COMMAND, or environment variable):
  --endpoints URL[,URL]   ETCDKIT_ENDPOINTS   default http://127.0.0.1:2379
  --user NAME             ETCDKIT_USER
  --password SECRET       ETCDKIT_PASSWORD
  --cacert FILE           ETCDKIT_CACERT      CA for https endpoints
  --cert FILE --key FILE  ETCDKIT_CERT, ETCDKIT_KEY   client certificate
  --insecure              ETCDKIT_INSECURE=1  skip server certificate checks
  --timeout MS            ETCDKIT_TIMEOUT     per request, default 5000
  --transport NAME        ETCDKIT_TRANSPORT   gateway (JSON, HTTP/1.1; default) or grpc (HTTP/2)`;

type TransportName = NonNullable<EtcdOptions['transport']>;

/** The client's transports; a record, so that one added to the client must be added here. */
const TRANSPORTS: Record<TransportName, true> = { gateway: true, grpc: true };

/** A mistake in how the command was called: printed with usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export type ConnectionValues = {
  [K in keyof typeof CONNECTION_FLAGS]?: (typeof CONNECTION_FLAGS)[K]['type'] extends 'boolean'
    ? boolean
    : string;
};

export function connect(
  values: ConnectionValues,
  env: NodeJS.ProcessEnv = process.env,
): Etcd<string> {
  const endpoints = (values.endpoints ?? env.ETCDKIT_ENDPOINTS ?? 'http://127.0.0.1:2379')
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  const options: EtcdOptions<string> = { endpoints, codec: 'string' };
  // Neither given: the client's own default applies.
  options.transport = transport(values.transport, env.ETCDKIT_TRANSPORT);
  const timeout = values.timeout ?? env.ETCDKIT_TIMEOUT ?? '5000';
  if (!/^\d+$/.test(timeout))
    throw new UsageError(`--timeout must be a number of ms, got ${timeout}`);
  options.timeout = Number(timeout);
  const user = values.user ?? env.ETCDKIT_USER;
  if (user !== undefined)
    options.auth = { user, password: values.password ?? env.ETCDKIT_PASSWORD ?? '' };
  const cacert = values.cacert ?? env.ETCDKIT_CACERT;
  const cert = values.cert ?? env.ETCDKIT_CERT;
  const key = values.key ?? env.ETCDKIT_KEY;
  const insecure = values.insecure ?? env.ETCDKIT_INSECURE === '1';
  if (cacert || cert || key || insecure) {
    if ((cert === undefined) !== (key === undefined))
      throw new UsageError('--cert and --key go together');
    options.tls = {};
    if (cacert) options.tls.ca = readFile(cacert);
    if (cert && key) {
      options.tls.cert = readFile(cert);
      options.tls.key = readFile(key);
    }
    if (insecure) options.tls.rejectUnauthorized = false;
  }
  return new EtcdClient<string>(options);
}

function transport(
  flag: string | undefined,
  variable: string | undefined,
): TransportName | undefined {
  const given = flag ?? variable;
  if (given === undefined || Object.hasOwn(TRANSPORTS, given))
    return given as TransportName | undefined;
  const names = Object.keys(TRANSPORTS).join(' or ');
  const source = flag === undefined ? 'ETCDKIT_TRANSPORT' : '--transport';
  throw new UsageError(`${source} must be ${names}, got ${JSON.stringify(given)}`);
}

function readFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
  }
}
