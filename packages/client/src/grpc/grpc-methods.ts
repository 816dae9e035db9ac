/**
 * The gRPC method behind each gateway path the client calls, with its request
 * and response messages, looked up once from etcd's generated descriptors.
 */
import type { DescMessage } from '@bufbuild/protobuf';
import { ProtocolError } from '../errors.js';
import { file_etcd_etcdserver_etcdserverpb_rpc as rpc } from './gen/etcd/etcdserver/etcdserverpb/rpc_pb.js';
import { ROUTES } from './gen/routes.js';

export interface GrpcMethod {
  /** The HTTP/2 `:path`, e.g. `/etcdserverpb.KV/Range`. */
  readonly path: string;
  readonly input: DescMessage;
  readonly output: DescMessage;
  /** The RPC streams (Watch, LeaseKeepAlive). */
  readonly streaming: boolean;
}

const methods = new Map<string, GrpcMethod>();

/** The gRPC method for gateway path `route` (`kv/range`, `watch`, ...). */
export function grpcMethod(route: string): GrpcMethod {
  let method = methods.get(route);
  if (method) return method;
  const target = ROUTES[route];
  const service = target && rpc.services.find((s) => s.typeName === target[0]);
  const desc = service?.methods.find((m) => m.name === target![1]);
  if (!desc) throw new ProtocolError(`no gRPC method serves ${route}`);
  method = {
    path: `/${service!.typeName}/${desc.name}`,
    input: desc.input,
    output: desc.output,
    streaming: desc.methodKind !== 'unary',
  };
  methods.set(route, method);
  return method;
}
