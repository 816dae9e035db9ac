/**
 * One request of a call, sent to the endpoints in turn until one answers.
 *
 * How it works: the request goes to the endpoint that answered last (the set's
 * order puts healthy endpoints first). When that endpoint fails, it is marked
 * down and the request moves on to the next: always for a read; for a write
 * only when it provably never left (the connection was refused, or a proxy
 * answered 503 without forwarding it). A write that may have reached etcd
 * stops there as indeterminate. The common case, a first endpoint that
 * answers, is one request and one `then`.
 */
import { type CallScope, DEADLINE } from './call-scope.js';
import { describeError, errorCode } from './describe-error.js';
import type { Endpoint, EndpointSet } from './endpoints.js';
import { EtcdError, TimeoutError, UnavailableError } from './errors.js';
import type { Json } from './wire.js';

/** Connection-level error codes that prove the request was never sent. */
const NEVER_SENT = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * An answer from something in front of the member (a proxy's error page) that
 * says the member could not be reached: the endpoint is avoided, and a write
 * stops here only if it is `indeterminate`.
 */
export class EndpointUnreachable extends UnavailableError {}

/** One attempt of a request on one endpoint: the transport's own request. */
export type Attempt<L> = (endpoint: Endpoint<L>) => Promise<Json>;

/** Sends the request by `attempt`, moving on to the next endpoint when allowed. */
export function sendWithFailover<L>(
  endpointSet: EndpointSet<L>,
  attempt: Attempt<L>,
  scope: CallScope,
  write: boolean,
): Promise<Json> {
  const { list } = endpointSet;
  // One endpoint is tried whether it is up or down: no need to order them.
  const endpoints = list.length === 1 ? list : endpointSet.order();
  const first = endpoints[0]!;
  return attempt(first).then(
    (result) => {
      endpointSet.succeeded(first);
      return result;
    },
    async (err: unknown) => {
      let lastError = afterFailure(endpointSet, err, first, scope, write);
      for (const endpoint of endpoints.slice(1)) {
        try {
          const result = await attempt(endpoint);
          endpointSet.succeeded(endpoint);
          return result;
        } catch (error) {
          lastError = afterFailure(endpointSet, error, endpoint, scope, write);
        }
      }
      const urls = endpointSet.list.map((e) => e.url).join(', ');
      throw new UnavailableError(
        `no endpoint could be reached (${urls}): ${describeError(lastError)}`,
        { cause: lastError },
      );
    },
  );
}

/**
 * Judges a failed request on `endpoint`: throws when the call must stop here,
 * returns the error when the next endpoint may be tried.
 */
function afterFailure<L>(
  endpointSet: EndpointSet<L>,
  err: unknown,
  endpoint: Endpoint<L>,
  scope: CallScope,
  write: boolean,
): unknown {
  if (scope.aborted) {
    // A member that let the deadline pass is avoided by the next calls.
    if (scope.reason === DEADLINE)
      endpointSet.failed(endpoint, new TimeoutError('deadline passed'));
    throw err;
  }
  if (
    err instanceof UnavailableError &&
    (!err.indeterminate || err instanceof EndpointUnreachable)
  ) {
    // etcd refused it (no leader, not ready) or a proxy answered for a dead
    // member: avoid this one, and try the next unless the write may have left.
    endpointSet.failed(endpoint, err);
    if (err.indeterminate) throw err;
    return err;
  }
  if (err instanceof EtcdError) throw err;
  endpointSet.failed(endpoint, err as Error);
  if (write && !NEVER_SENT.has(errorCode(err))) {
    throw new UnavailableError(`${endpoint.url}: ${describeError(err)}`, {
      cause: err,
      indeterminate: true,
    });
  }
  return err;
}
