/**
 * A cluster for fault scenarios: three members (unless told), each behind its
 * own fault proxy. Clients under test get the proxy URLs; checks go to the
 * members directly. Killing a member also makes its proxy refuse, since the
 * port of a dead process refuses connections rather than accepting them.
 */
import {
  type EtcdCluster,
  type EtcdMember,
  eventually,
  type FaultProxy,
  type StartOptions,
  startEtcd,
  startProxy,
} from '@etcdkit/harness';

const START_TIMEOUT_MS = 30_000;

export interface ProxiedCluster {
  readonly cluster: EtcdCluster;
  readonly members: EtcdMember[];
  /** One proxy per member, in member order. */
  readonly proxies: FaultProxy[];
  /** The proxy URLs, in member order: what clients under test connect to. */
  readonly endpoints: string[];
  /** The proxy URLs with member `first` first, then the others in order. */
  endpointsFrom(first: number): string[];
  /** Index of the member that is the raft leader now. */
  leaderIndex(): Promise<number>;
  /** Index of a member that is not the leader now. */
  followerIndex(): Promise<number>;
  /** SIGKILLs member `i` and makes its proxy refuse: its port is closed, as for a dead process. */
  kill(i: number): Promise<void>;
  /** Starts member `i` again on its data and lets its proxy forward again. */
  start(i: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a cluster (three members unless told) with a fault proxy in front of each member. */
export async function startProxiedCluster(options: StartOptions = {}): Promise<ProxiedCluster> {
  const cluster = await startEtcd({ members: 3, ...options });
  const proxies: FaultProxy[] = [];
  try {
    for (const member of cluster.members) proxies.push(await startProxy(member.clientUrl));
  } catch (err) {
    await Promise.all(proxies.map((p) => p.close()));
    await cluster.close();
    throw err;
  }
  const members = cluster.members;
  const endpoints = proxies.map((p) => p.url);
  const leaderIndex = async () => {
    const leader = await eventually(() => cluster.leader(), { timeout: 15_000, interval: 100 });
    return members.indexOf(leader);
  };
  return {
    cluster,
    members,
    proxies,
    endpoints,
    endpointsFrom: (first) => [endpoints[first]!, ...endpoints.filter((_, i) => i !== first)],
    leaderIndex,
    followerIndex: async () => ((await leaderIndex()) + 1) % members.length,
    async kill(i) {
      await Promise.all([members[i]!.kill('SIGKILL'), proxies[i]!.refuse()]);
    },
    async start(i) {
      members[i]!.start('existing');
      await proxies[i]!.pass();
      await members[i]!.waitHealthy(START_TIMEOUT_MS);
    },
    async close() {
      await Promise.all(proxies.map((p) => p.close()));
      await cluster.close();
    },
  };
}
