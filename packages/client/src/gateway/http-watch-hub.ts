import { setTimeout as sleep } from 'node:timers/promises';
import { EtcdError, UnavailableError } from '../errors.js';
import { BaseHub, backoff, type WatchTimings } from '../watch-hub.js';
import type { HubWatcher } from '../watcher.js';
import type { GatewayTransport } from './gateway-transport.js';
import { NdjsonParser } from './ndjson.js';

type AnyWatcher = HubWatcher;

const REQUIRE_LEADER = { 'grpc-metadata-hasleader': 'true' };

/**
 * How the HTTP hub notices a stall: a streaming POST cannot carry a progress
 * request, so when a stream has been quiet for `progressInterval`, its member
 * is asked for its status; no answer within `progressTimeout` (a stopped or
 * cut-off member) ends the stream, and the watcher resumes elsewhere.
 */
export class HttpWatchHub extends BaseHub {
  readonly #timings: WatchTimings;
  readonly #requests = new Map<AnyWatcher, AbortController>();
  /** One liveness probe per member at a time, shared by its quiet streams. */
  readonly #probes = new Map<string, Promise<boolean>>();

  readonly #gateway: GatewayTransport;

  constructor(transport: GatewayTransport, timings: WatchTimings) {
    super(transport);
    this.#gateway = transport;
    this.#timings = timings;
  }

  protected started(watcher: AnyWatcher): void {
    void this.#run(watcher);
  }

  protected stopped(watcher: AnyWatcher): void {
    this.#requests.get(watcher)?.abort();
    this.#requests.delete(watcher);
  }

  // One watcher per request: refusals are routed to it directly.
  protected oldestPending(): AnyWatcher | undefined {
    return undefined;
  }

  protected answered(): void {}

  /** One request per watcher, re-opened from the watcher's next revision until it ends. */
  async #run(watcher: AnyWatcher): Promise<void> {
    for (let attempt = 0; this.watchers.get(watcher.id) === watcher; ) {
      const controller = new AbortController();
      this.#requests.set(watcher, controller);
      let failure: Error;
      let stalled: { url: string; error: Error } | undefined;
      let watchdog: NodeJS.Timeout | undefined;
      try {
        const { body, url } = await this.#gateway.stream(
          'watch',
          { create_request: watcher.createRequest() },
          controller.signal,
          // Ask the member to end the stream when it loses its leader, rather than go quiet.
          REQUIRE_LEADER,
        );
        let last = Date.now();
        watchdog = this.#watchdog(
          url,
          () => last,
          (error) => {
            stalled = { url, error };
            controller.abort(error);
          },
        );
        const parser = new NdjsonParser();
        failure = new UnavailableError('the watch stream ended');
        for await (const chunk of body) {
          last = Date.now();
          // What came before a bad line is delivered; then the stream is re-opened.
          const error = this.#routeAll(parser.push(chunk), watcher) ?? parser.error;
          if (error) {
            failure = error;
            controller.abort();
            break;
          }
          attempt = 0;
        }
      } catch (err) {
        failure = err as Error;
      } finally {
        clearInterval(watchdog);
      }
      if (stalled) {
        failure = stalled.error;
        this.transport.rotateFrom(stalled.url, stalled.error);
      }
      if (this.watchers.get(watcher.id) !== watcher) return;
      if (
        failure instanceof EtcdError &&
        !failure.retryable &&
        !(failure instanceof UnavailableError)
      ) {
        watcher.fail(failure);
        return;
      }
      watcher.disconnected(failure);
      await sleep(backoff(attempt++), undefined, { signal: this.stopping }).catch(() => undefined);
    }
  }

  /** Routes messages in order; the first that needs the stream re-established stops it. */
  #routeAll(messages: unknown[], watcher: AnyWatcher): Error | undefined {
    for (const message of messages) {
      const error = this.route(message, watcher);
      if (error) return error;
    }
    return undefined;
  }

  /** Checks a stream to `url` whose last message came at `last()`; calls `stall` when its member is gone. */
  #watchdog(url: string, last: () => number, stall: (error: Error) => void): NodeJS.Timeout {
    const { progressInterval, progressTimeout } = this.#timings;
    const timer = setInterval(
      () => {
        if (Date.now() - last() < progressInterval) return;
        let probe = this.#probes.get(url);
        if (!probe) {
          probe = this.transport.answers(url, progressTimeout);
          this.#probes.set(url, probe);
          void probe.finally(() => this.#probes.delete(url));
        }
        void probe.then((alive) => {
          if (!alive) stall(new UnavailableError(`watch stream to ${url} stalled`));
        });
      },
      Math.max(10, progressInterval / 2),
    );
    timer.unref();
    return timer;
  }
}
