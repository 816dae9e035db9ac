/**
 * The names a request goes by, over either transport: a gRPC call's `:path`
 * (`/etcdserverpb.KV/Range`) and the JSON gateway path of the same RPC
 * (`/v3/kv/range`), so that one match finds a call whichever transport made it.
 */

/** Gateway path after `/v3/` → gRPC `Service/Method` in package etcdserverpb (etcd's rpc.proto HTTP annotations). */
const ROUTES: Readonly<Record<string, string>> = {
  'kv/range': 'KV/Range',
  'kv/put': 'KV/Put',
  'kv/deleterange': 'KV/DeleteRange',
  'kv/txn': 'KV/Txn',
  'kv/compaction': 'KV/Compact',
  watch: 'Watch/Watch',
  'lease/grant': 'Lease/LeaseGrant',
  'lease/revoke': 'Lease/LeaseRevoke',
  'lease/keepalive': 'Lease/LeaseKeepAlive',
  'lease/timetolive': 'Lease/LeaseTimeToLive',
  'lease/leases': 'Lease/LeaseLeases',
  'cluster/member/add': 'Cluster/MemberAdd',
  'cluster/member/remove': 'Cluster/MemberRemove',
  'cluster/member/update': 'Cluster/MemberUpdate',
  'cluster/member/list': 'Cluster/MemberList',
  'cluster/member/promote': 'Cluster/MemberPromote',
  'maintenance/alarm': 'Maintenance/Alarm',
  'maintenance/status': 'Maintenance/Status',
  'maintenance/defragment': 'Maintenance/Defragment',
  'maintenance/hash': 'Maintenance/HashKV',
  'maintenance/snapshot': 'Maintenance/Snapshot',
  'maintenance/transfer-leadership': 'Maintenance/MoveLeader',
  'auth/enable': 'Auth/AuthEnable',
  'auth/disable': 'Auth/AuthDisable',
  'auth/authenticate': 'Auth/Authenticate',
  'auth/user/add': 'Auth/UserAdd',
  'auth/user/get': 'Auth/UserGet',
  'auth/user/list': 'Auth/UserList',
  'auth/user/delete': 'Auth/UserDelete',
  'auth/user/changepw': 'Auth/UserChangePassword',
  'auth/user/grant': 'Auth/UserGrantRole',
  'auth/user/revoke': 'Auth/UserRevokeRole',
  'auth/role/add': 'Auth/RoleAdd',
  'auth/role/get': 'Auth/RoleGet',
  'auth/role/list': 'Auth/RoleList',
  'auth/role/delete': 'Auth/RoleDelete',
  'auth/role/grant': 'Auth/RoleGrantPermission',
  'auth/role/revoke': 'Auth/RoleRevokePermission',
};

/** Each RPC as a pair: `[gateway path, gRPC path]`, e.g. `['/v3/kv/range', '/etcdserverpb.KV/Range']`. */
export const RPC_PATHS: readonly (readonly [string, string])[] = Object.entries(ROUTES).map(
  ([route, method]) => [`/v3/${route}`, `/etcdserverpb.${method}`],
);

const byGrpc = new Map(RPC_PATHS.map(([gateway, grpc]) => [grpc, gateway]));
const byGateway = new Map(RPC_PATHS.map(([gateway, grpc]) => [gateway, grpc]));

/**
 * The names of a request path: the path itself, then its counterpart on the
 * other transport when it is an etcd RPC. A gateway path is taken without its
 * query and with any API prefix version (`/v3beta/...`) read as `/v3/`.
 */
export function requestNames(path: string): string[] {
  const grpc = byGrpc.get(path);
  if (grpc !== undefined) return [path, grpc];
  const gateway = /^\/v3[a-z0-9]*\/([^?#]*)/.exec(path);
  const other = gateway && byGateway.get(`/v3/${gateway[1]}`);
  return other ? [path, other] : [path];
}
