/** The transport clients take in this test run when they choose none: ETCDKIT_TRANSPORT, else the gateway. */
export function transportUnderTest(): 'gateway' | 'grpc' {
  return process.env.ETCDKIT_TRANSPORT === 'grpc' ? 'grpc' : 'gateway';
}
