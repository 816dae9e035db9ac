/**
 * The gRPC transport's `Links`: one `GrpcLink` (an HTTP/2 session) per
 * endpoint. An endpoint is healthy when it answers `Maintenance/Status`
 * (an answer refusing it for want of auth counts: the member works).
 */
import { CallScope } from '../call-scope.js';
import type { Links } from '../endpoints.js';
import { EtcdError, UnavailableError } from '../errors.js';
import type { TlsOptions } from '../transport-options.js';
import { GrpcLink } from './grpc-link.js';

export function grpcLinks(tls: TlsOptions | undefined): Links<GrpcLink> {
  return {
    open: (url) => new GrpcLink(url, tls),
    async healthy(link, ms) {
      const { encodeMessage, grpcMethod, grpcRequest } = await import('./grpc-calls.js');
      const status = grpcMethod('maintenance/status');
      const scope = new CallScope(undefined, ms);
      const timer = setTimeout(() => scope.expire(), ms);
      try {
        await grpcRequest(link, status, encodeMessage(status, {}), undefined, false, scope);
        return true;
      } catch (err) {
        // An answer that refuses the question (auth) still comes from a working member.
        return err instanceof EtcdError && !(err instanceof UnavailableError || scope.aborted);
      } finally {
        clearTimeout(timer);
      }
    },
    close: (link, graceMs) => link.close(graceMs),
  };
}
