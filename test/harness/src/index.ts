export { makeCertificates, type TestCertificates } from './certs.js';
export {
  EtcdCluster,
  EtcdMember,
  findEtcd,
  findEtcdctl,
  type StartOptions,
  startEtcd,
} from './etcd.js';
export { type EventuallyOptions, eventually } from './eventually.js';
export { RPC_PATHS, requestNames } from './grpc-paths.js';
export { HpackDecoder } from './hpack.js';
export { freePorts } from './ports.js';
export { uniquePrefix } from './prefix.js';
export { type DropResponsesOptions, type FaultProxy, type ProxyMode, startProxy } from './proxy.js';
export { transportUnderTest } from './transport.js';
