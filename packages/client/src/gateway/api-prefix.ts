/** Which path prefix etcd's JSON gateway answers on, by etcd version. */
import { ProtocolError } from '../errors.js';

/** Maps `GET /version`'s server version to the gateway's path prefix. */
export function apiPrefixFor(serverVersion: string): string {
  const match = /^(\d+)\.(\d+)/.exec(serverVersion);
  if (!match) throw new ProtocolError(`unrecognised etcd version ${JSON.stringify(serverVersion)}`);
  const major = Number(match[1]);
  const minor = Number(match[2]);
  if (major !== 3 || minor < 2) {
    throw new ProtocolError(`etcd ${serverVersion} has no v3 JSON gateway this client supports`);
  }
  if (minor === 2) return '/v3alpha';
  if (minor === 3) return '/v3beta';
  return '/v3';
}
