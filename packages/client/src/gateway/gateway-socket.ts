/**
 * Opens a WebSocket to the gateway whose TCP connection can be cut at once.
 * A WebSocket's own `close()` waits for the peer's close frame, which a hung
 * (stopped) member never sends; so the connector records the socket it makes,
 * and `destroy()` ends it without waiting.
 */
import type { Socket } from 'node:net';
import { Agent, buildConnector, WebSocket } from 'undici';
import type { TlsOptions } from '../transport-options.js';

export interface GatewaySocket {
  ws: WebSocket;
  /** Drops the connection now, without a closing handshake. */
  destroy(): void;
  /** Sends a close frame, and drops the connection if the peer has not closed it within a second. */
  close(): void;
}

const CLOSE_GRACE_MS = 1_000;

/** `endpoint` is an http(s) origin, `path` the API path such as `/v3/watch`. */
export function openGatewaySocket(
  endpoint: string,
  path: string,
  tls: TlsOptions | undefined,
): GatewaySocket {
  const sockets = new Set<Socket>();
  const connect = buildConnector({ ...(tls ?? {}) } as buildConnector.BuildOptions);
  const agent = new Agent({
    connect: (options, callback) =>
      connect(options, (err, socket) => {
        if (socket) {
          sockets.add(socket);
          socket.once('close', () => sockets.delete(socket));
        }
        (callback as buildConnector.Callback)(
          ...([err, socket] as Parameters<buildConnector.Callback>),
        );
      }),
  });
  const ws = new WebSocket(`${endpoint.replace(/^http/, 'ws')}${path}`, { dispatcher: agent });
  const destroy = () => {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    void agent.destroy().catch(() => undefined);
  };
  return {
    ws,
    destroy,
    close() {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState !== ws.OPEN) return destroy();
      ws.close(1000);
      setTimeout(destroy, CLOSE_GRACE_MS).unref();
    },
  };
}
