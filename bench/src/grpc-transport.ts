/**
 * The options that make @etcdkit/client call etcd over gRPC instead of the
 * JSON gateway, for the etcdkit-grpc implementation and its cold start.
 *
 * Typed loosely, as spread into `createClient()`'s options: a client built
 * before the option existed type-checks, refuses it when created ("unknown
 * option"), and the runner then leaves the implementation out.
 */
export const GRPC_TRANSPORT: object = { transport: 'grpc' };
