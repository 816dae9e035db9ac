/**
 * Picks the transport a client speaks: the option, else the environment
 * variable `ETCDKIT_TRANSPORT` (so a deployment or a test run can switch
 * without code changes), else the gateway.
 */
import { InvalidArgumentError } from './errors.js';
import { GatewayTransport } from './gateway/gateway-transport.js';
import { GrpcTransport } from './grpc/grpc-transport.js';
import { TRANSPORTS, type Transport, type TransportName } from './transport.js';
import type { TransportOptions } from './transport-options.js';

export const TRANSPORT_ENV = 'ETCDKIT_TRANSPORT';

export function createTransport(
  name: TransportName | undefined,
  options: TransportOptions,
): Transport {
  const chosen = name ?? process.env[TRANSPORT_ENV] ?? 'gateway';
  if (!(TRANSPORTS as readonly string[]).includes(chosen)) {
    const from = name === undefined ? ` (from ${TRANSPORT_ENV})` : '';
    throw new InvalidArgumentError(
      `transport must be ${TRANSPORTS.map((t) => `'${t}'`).join(' or ')}, got ${JSON.stringify(chosen)}${from}`,
    );
  }
  return chosen === 'grpc' ? new GrpcTransport(options) : new GatewayTransport(options);
}
