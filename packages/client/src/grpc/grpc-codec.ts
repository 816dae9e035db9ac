/**
 * etcd's messages between their proto3 JSON form, which the client speaks
 * above the transport, and protobuf on the wire, by @bufbuild/protobuf's
 * reflection over the generated descriptors. Field names are the proto names
 * (`range_end`), as the gateway writes them; int64 are decimal strings and
 * bytes base64, as in the gateway's JSON.
 */
import { fromBinary, fromJson, type JsonValue, toBinary, toJson } from '@bufbuild/protobuf';
import { ProtocolError } from '../errors.js';
import type { Json } from '../wire.js';
import { frame } from './grpc-frames.js';
import type { GrpcMethod } from './grpc-methods.js';

const TO_JSON = { useProtoFieldName: true } as const;

/** The request `body` of `method` as one framed protobuf message. */
export function encodeMessage(method: GrpcMethod, body: Json): Buffer {
  let bytes: Uint8Array;
  try {
    bytes = toBinary(method.input, fromJson(method.input, body as JsonValue));
  } catch (err) {
    throw new ProtocolError(`cannot encode ${method.path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return frame(bytes);
}

/** One answer of `method` in its JSON form. */
export function decodeMessage(method: GrpcMethod, bytes: Uint8Array): Json {
  try {
    return toJson(method.output, fromBinary(method.output, bytes), TO_JSON) as Json;
  } catch (err) {
    throw new ProtocolError(
      `cannot decode the answer of ${method.path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}
