/**
 * The endpoints of a client and what is known of their health.
 *
 * How it works: calls go to the endpoint that answered last. An endpoint that
 * fails (refused, reset, hung past a deadline, no leader) is marked down for a
 * while, longer after repeated failures, and calls try healthy endpoints
 * first; a down endpoint is still tried when every endpoint is down. While any
 * endpoint is down, a prober asks it every second whether it is healthy and
 * marks it up again when it says so. Changes are emitted as `endpoint-down`
 * and `endpoint-up`. What connects to an endpoint, and how it is asked, is
 * the transport's (`Links`): the set only keeps the health.
 */
import { performance } from 'node:perf_hooks';
import { EventEmitter } from 'eventemitter3';

export interface EndpointEvents {
  /** Calls to `url` failed; it is avoided until it answers again. */
  'endpoint-down': [url: string, error: Error];
  /** `url` answered again. */
  'endpoint-up': [url: string];
}

/** A transport's connections to one endpoint: how they are opened, probed and closed. */
export interface Links<L> {
  open(url: string): L;
  /** Whether the endpoint answers healthy within `ms`; false or a rejection when not. */
  healthy(link: L, ms: number): Promise<boolean>;
  /** Closes `link`, cutting calls still in flight after `graceMs`. */
  close(link: L, graceMs: number): Promise<void>;
}

export interface Endpoint<L = unknown> {
  readonly url: string;
  /** The transport's connections to this endpoint. */
  readonly link: L;
  /** Monotonic time until which the endpoint counts as down (0: up). */
  downUntil: number;
  /** Consecutive failures, for the back-off of `downUntil`. */
  failures: number;
}

const DOWN_BASE_MS = 1_000;
const DOWN_MAX_MS = 30_000;
const PROBE_EVERY_MS = 1_000;
const PROBE_TIMEOUT_MS = 1_000;

export class EndpointSet<L = unknown> extends EventEmitter<EndpointEvents> {
  #list: Endpoint<L>[];
  readonly #links: Links<L>;
  #current = 0;
  #prober: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(urls: string[], links: Links<L>) {
    super();
    this.#links = links;
    this.#list = urls.map((url) => this.#open(url));
  }

  #open(url: string): Endpoint<L> {
    return { url, link: this.#links.open(url), downUntil: 0, failures: 0 };
  }

  get list(): readonly Endpoint<L>[] {
    return this.#list;
  }

  /**
   * Replaces the endpoints with `urls` (learnt from the cluster's member list):
   * known ones keep their connections and health, new ones are opened, and
   * those no longer listed are closed once their calls finish.
   */
  replace(urls: string[]): void {
    if (urls.length === 0 || this.#closed) return;
    const current = this.#list[this.#current];
    const kept = new Map(this.#list.map((e) => [e.url, e]));
    const next = urls.map((url) => kept.get(url) ?? this.#open(url));
    for (const e of this.#list) {
      if (!urls.includes(e.url))
        void this.#links.close(e.link, CLOSE_GRACE_MS).catch(() => undefined);
    }
    this.#list = next;
    this.#current = Math.max(0, current ? next.indexOf(current) : 0);
  }

  /** The endpoint a new stream or call should use first. */
  get current(): Endpoint<L> {
    return this.order()[0]!;
  }

  /** Every endpoint once: healthy ones from the current on, then the down ones. */
  order(): Endpoint<L>[] {
    const now = performance.now();
    const up: Endpoint<L>[] = [];
    const down: Endpoint<L>[] = [];
    for (let i = 0; i < this.#list.length; i++) {
      const e = this.#list[(this.#current + i) % this.#list.length]!;
      (e.downUntil <= now ? up : down).push(e);
    }
    return down.length === 0 ? up : up.concat(down);
  }

  succeeded(endpoint: Endpoint<L>): void {
    const index = this.#list.indexOf(endpoint);
    if (index >= 0) this.#current = index;
    if (endpoint.failures > 0 || endpoint.downUntil > 0) this.#markUp(endpoint);
  }

  failed(endpoint: Endpoint<L> | string, error: Error): void {
    const e = typeof endpoint === 'string' ? this.#list.find((x) => x.url === endpoint) : endpoint;
    if (!e || this.#closed) return;
    const wasUp = e.downUntil <= performance.now();
    e.failures++;
    e.downUntil = performance.now() + Math.min(DOWN_MAX_MS, DOWN_BASE_MS * 2 ** (e.failures - 1));
    if (this.#list[this.#current] === e) this.#current = (this.#current + 1) % this.#list.length;
    if (wasUp) this.emit('endpoint-down', e.url, error);
    this.#startProbing();
  }

  #markUp(e: Endpoint<L>): void {
    const wasDown = e.downUntil > 0;
    e.failures = 0;
    e.downUntil = 0;
    if (wasDown) this.emit('endpoint-up', e.url);
  }

  #startProbing(): void {
    if (this.#prober || this.#closed || this.#list.length < 2) return;
    this.#prober = setInterval(() => void this.#probe(), PROBE_EVERY_MS);
    this.#prober.unref();
  }

  async #probe(): Promise<void> {
    const down = this.#list.filter((e) => e.downUntil > 0);
    if (down.length === 0) {
      clearInterval(this.#prober);
      this.#prober = undefined;
      return;
    }
    await Promise.all(
      down.map(async (e) => {
        try {
          if ((await this.#links.healthy(e.link, PROBE_TIMEOUT_MS)) && !this.#closed) {
            this.#markUp(e);
          }
        } catch {
          // still down
        }
      }),
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#prober);
    // Calls still in flight get a moment to finish; then their connections are cut.
    await Promise.all(this.#list.map((e) => this.#links.close(e.link, CLOSE_GRACE_MS)));
  }
}

/** How long calls still in flight at `close()` may take before their connections are cut. */
const CLOSE_GRACE_MS = 1_000;
