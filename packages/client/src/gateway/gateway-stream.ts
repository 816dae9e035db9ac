/**
 * A gateway stream: a WebSocket to `<apiPrefix>/watch` or
 * `<apiPrefix>/lease/keepalive` on which each request and each answer is one
 * JSON text message, seen by its owner as a `MessageStream`.
 */
import { ProtocolError, UnavailableError } from '../errors.js';
import type { MessageStream } from '../transport.js';
import type { TlsOptions } from '../transport-options.js';
import { asObject, type Json } from '../wire.js';
import { openGatewaySocket } from './gateway-socket.js';

export function openGatewayStream(
  url: string,
  path: string,
  tls: TlsOptions | undefined,
): MessageStream {
  const socket = openGatewaySocket(url, path, tls);
  const { ws } = socket;
  const stream: MessageStream = {
    onopen: null,
    onmessage: null,
    onclose: null,
    send(message) {
      ws.send(JSON.stringify(message));
    },
    close: () => socket.close(),
    destroy: () => socket.destroy(),
  };
  ws.onopen = () => stream.onopen?.();
  ws.onmessage = (event) => {
    let message: Json;
    try {
      message = asObject(JSON.parse(String(event.data)), 'stream message');
    } catch (err) {
      const text = String(event.data).slice(0, 120);
      stream.onclose?.(new ProtocolError(`a stream message is not JSON: ${text}`, { cause: err }));
      return;
    }
    stream.onmessage?.(message);
  };
  ws.onclose = (event) =>
    stream.onclose?.(new UnavailableError(`stream to ${url} closed (${event.code})`));
  ws.onerror = (event) => {
    const cause = (event as { error?: unknown }).error;
    const why = cause instanceof Error ? `: ${cause.message}` : '';
    stream.onclose?.(new UnavailableError(`stream to ${url} failed${why}`, { cause }));
  };
  return stream;
}
