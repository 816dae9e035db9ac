/**
 * The gateway's connections to one endpoint: an undici Pool of HTTP/1.1
 * connections for calls, and a second Pool for long-lived streams (HTTP
 * watches) so they never take the calls' connections. Health is etcd's
 * `GET /health`.
 */
import { Pool } from 'undici';
import type { Links } from '../endpoints.js';
import type { TlsOptions } from '../transport-options.js';

export interface GatewayLink {
  readonly pool: Pool;
  readonly streams: Pool;
}

export function gatewayLinks(connections: number, tls: TlsOptions | undefined): Links<GatewayLink> {
  const connect = { ...(tls ?? {}) };
  return {
    open: (url) => ({
      pool: new Pool(url, { connections, pipelining: 1, connect }),
      streams: new Pool(url, { pipelining: 1, connect }),
    }),
    async healthy(link, ms) {
      const res = await link.pool.request({
        method: 'GET',
        path: '/health',
        signal: AbortSignal.timeout(ms),
      });
      const body = (await res.body.json()) as { health?: unknown };
      return body.health === 'true';
    },
    async close(link, graceMs) {
      await Promise.all([
        closeWithin(link.pool, graceMs),
        link.streams.destroy().catch(() => undefined),
      ]);
    },
  };
}

async function closeWithin(pool: Pool, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), ms);
  });
  const closed = pool.close().then(
    () => 'closed' as const,
    () => 'closed' as const,
  );
  try {
    if ((await Promise.race([closed, late])) === 'late') await pool.destroy();
  } catch {
    // already closed or destroyed
  } finally {
    clearTimeout(timer);
  }
}
