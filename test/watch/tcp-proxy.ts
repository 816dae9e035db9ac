/**
 * A loopback TCP proxy in front of a member, for fault injection: it can cut
 * every live connection, refuse (reset) new ones, drop all bytes while keeping
 * connections open (a dead network path), and switch its target. It forwards
 * bytes, so it carries WebSockets as well as plain HTTP.
 */
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  /** The client URL that new connections are forwarded to; change it to redirect. */
  target: string;
  readonly #server: Server;
  readonly #live = new Set<Socket>();
  #refusing = false;
  #blackhole = false;
  #connections = 0;
  #port = 0;

  private constructor(target: string) {
    this.target = target;
    this.#server = createServer((client) => this.#accept(client));
  }

  /** Starts a proxy on 127.0.0.1 and a free port. */
  static async start(target: string): Promise<TcpProxy> {
    const proxy = new TcpProxy(target);
    proxy.#server.listen(0, '127.0.0.1');
    await once(proxy.#server, 'listening');
    const address = proxy.#server.address();
    if (address === null || typeof address === 'string') throw new Error('no port assigned');
    proxy.#port = address.port;
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Connections accepted so far. */
  get connections(): number {
    return this.#connections;
  }

  /** Closes every live connection, on both sides. */
  cut(): void {
    for (const socket of this.#live) socket.destroy();
    this.#live.clear();
  }

  /** While on, new connections are reset as soon as they are accepted. */
  refuse(on: boolean): void {
    this.#refusing = on;
  }

  /** While on, bytes in both directions are dropped; connections stay open. */
  blackhole(on: boolean): void {
    this.#blackhole = on;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #accept(client: Socket): void {
    this.#connections++;
    client.on('error', () => undefined);
    if (this.#refusing) {
      client.resetAndDestroy();
      return;
    }
    const to = new URL(this.target);
    const upstream = connect({ host: to.hostname, port: Number(to.port) });
    upstream.on('error', () => undefined);
    this.#live.add(client);
    this.#live.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.#live.delete(client);
      this.#live.delete(upstream);
    };
    client.on('close', drop);
    upstream.on('close', drop);
    client.on('data', (chunk: Buffer) => {
      if (!this.#blackhole) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!this.#blackhole) client.write(chunk);
    });
  }
}

export const tcpProxy = (target: string): Promise<TcpProxy> => TcpProxy.start(target);
