/**
 * The options that make @etcdkit/client call etcd over gRPC instead of the
 * JSON gateway, for the etcdkit-grpc implementation and its cold start.
 */
import type { EtcdOptions } from '@etcdkit/client';

export const GRPC_TRANSPORT: Pick<EtcdOptions, 'transport'> = { transport: 'grpc' };
