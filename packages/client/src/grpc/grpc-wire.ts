/**
 * The gRPC transport's wire pieces, exported as `@etcdkit/client/internal/grpc-wire`
 * for tests of the framing and the message conversion. Not a public API: it
 * may change in any release.
 */

export { ROUTES } from './gen/routes.js';
export { decodeMessage, encodeMessage } from './grpc-codec.js';
export { FrameReader, frame } from './grpc-frames.js';
export { grpcMethod } from './grpc-methods.js';
