/**
 * What the gRPC transport loads on first use: etcd's generated descriptors,
 * @bufbuild/protobuf, and the calls and streams built on them. A client on
 * the gateway never loads it.
 */
export { encodeMessage } from './grpc-codec.js';
export { grpcMethod } from './grpc-methods.js';
export { grpcRequest } from './grpc-request.js';
export { openGrpcStream } from './grpc-stream.js';
