// Under exactOptionalPropertyTypes, every optional field of every public
// options type takes `undefined`, meaning "not set": `{ signal: maybeSignal }`
// compiles whether or not there is a signal. `allUndefined` also fails when a
// field is left out here, so a new option must be added to this file.

import type { RunIo } from '@etcdkit/cli';
import type {
  AuthOptions,
  CallOptions,
  CreateOptions,
  DeleteOptions,
  Etcd,
  EtcdOptions,
  GetOptions,
  PutOptions,
  RangeIteratorOptions,
  RangeOptions,
  RawCompare,
  RawDeleteRange,
  RawPut,
  RawRange,
  RawTxn,
  ReaddirOptions,
  RmdirOptions,
  SessionOptions,
  SetOptions,
  TlsOptions,
  WatchOptions,
  WatchStreamOptions,
} from '@etcdkit/client';
import type {
  CampaignOptions,
  Election,
  ElectionOptions,
  Leadership,
  ObserveOptions,
  ResumeOptions,
} from '@etcdkit/election';
import type { AcquireOptions, Mutex, RWMutex, Semaphore } from '@etcdkit/mutex';
import type {
  ChangesOptions,
  DeregisterOptions,
  EjectionOptions,
  HealthCheckOptions,
  InstanceDescription,
  PickerOptions,
  PickOptions,
  ReadyOptions,
  RegisterOptions,
  Registration,
  RegistrationUpdate,
  Registry,
  RegistryOptions,
  ServiceSet,
} from '@etcdkit/registry';
import { allUndefined } from './expect.js';

/** The options of a method, for methods whose options type has no name of its own. */
type OptionsOf<F extends (...args: never[]) => unknown, At extends number> = NonNullable<
  Parameters<F>[At]
>;

/** The fields of CallOptions, which most options types extend. */
const callFields = { signal: undefined, timeout: undefined };

const rangeFields = {
  revision: undefined,
  limit: undefined,
  sortOrder: undefined,
  sortTarget: undefined,
  keysOnly: undefined,
  countOnly: undefined,
  serializable: undefined,
  minModRevision: undefined,
  maxModRevision: undefined,
  minCreateRevision: undefined,
  maxCreateRevision: undefined,
};

export const client = {
  etcd: allUndefined<EtcdOptions>({
    endpoints: undefined,
    keyPrefix: undefined,
    ttl: undefined,
    timeout: undefined,
    transport: undefined,
    apiPrefix: undefined,
    codec: undefined,
    tls: undefined,
    auth: undefined,
    maxRequestBytes: undefined,
    maxTxnOps: undefined,
    connections: undefined,
    autoSyncInterval: undefined,
    sessionTtl: undefined,
    watch: undefined,
  }),
  session: allUndefined<SessionOptions>({ ...callFields, ttl: undefined, lease: undefined }),
  watch: allUndefined<WatchOptions>({
    startRevision: undefined,
    progressNotify: undefined,
    filters: undefined,
    prevKv: undefined,
    watchId: undefined,
    fragment: undefined,
    signal: undefined,
    timeout: undefined,
  }),
  tls: allUndefined<TlsOptions>({
    ca: undefined,
    cert: undefined,
    key: undefined,
    servername: undefined,
    rejectUnauthorized: undefined,
  }),
  auth: allUndefined<AuthOptions>({ user: 'u', password: 'p', refreshInterval: undefined }),
  watchStream: allUndefined<WatchStreamOptions>({
    transport: undefined,
    progressInterval: undefined,
    progressTimeout: undefined,
  }),
  call: allUndefined<CallOptions>(callFields),
  get: allUndefined<GetOptions>({
    ...callFields,
    revision: undefined,
    serializable: undefined,
  }),
  set: allUndefined<SetOptions>({
    ...callFields,
    ttl: undefined,
    lease: undefined,
    prevKv: undefined,
    ignoreValue: undefined,
    ignoreLease: undefined,
  }),
  create: allUndefined<CreateOptions>({
    ...callFields,
    lease: undefined,
    ttl: undefined,
    prevKv: undefined,
  }),
  delete: allUndefined<OptionsOf<Etcd['delete'], 1>>({
    ...callFields,
    prevKv: undefined,
  }),
  range: allUndefined<RangeOptions>(rangeFields),
  readdir: allUndefined<ReaddirOptions>({ ...callFields, ...rangeFields }),
  rmdir: allUndefined<RmdirOptions>({ ...callFields, prevKv: undefined }),
  rangeIterator: allUndefined<RangeIteratorOptions>({
    ...callFields,
    pageSize: undefined,
    revision: undefined,
    keysOnly: undefined,
    serializable: undefined,
  }),
  put: allUndefined<PutOptions>({
    lease: undefined,
    prevKv: undefined,
    ignoreValue: undefined,
    ignoreLease: undefined,
  }),
  deleteOp: allUndefined<DeleteOptions>({ prevKv: undefined }),
  compact: allUndefined<OptionsOf<Etcd['compact'], 1>>({
    ...callFields,
    physical: undefined,
  }),
  mirror: allUndefined<OptionsOf<Etcd['mirror'], 1>>({ signal: undefined }),
  rawCompare: allUndefined<RawCompare>({
    target: 'VERSION',
    key: 'k',
    result: undefined,
    value: undefined,
    version: undefined,
    createRevision: undefined,
    modRevision: undefined,
    lease: undefined,
  }),
  rawRange: allUndefined<RawRange>({
    key: 'k',
    prefix: undefined,
    revision: undefined,
    limit: undefined,
    keysOnly: undefined,
    countOnly: undefined,
    serializable: undefined,
  }),
  rawPut: allUndefined<RawPut>({
    key: 'k',
    value: undefined,
    lease: undefined,
    prevKv: undefined,
    ignoreValue: undefined,
    ignoreLease: undefined,
  }),
  rawDeleteRange: allUndefined<RawDeleteRange>({ key: 'k', prefix: undefined, prevKv: undefined }),
  rawTxn: allUndefined<RawTxn>({ compare: undefined, success: undefined, failure: undefined }),
};

export const mutex = {
  acquire: allUndefined<AcquireOptions>({ signal: undefined, timeout: undefined }),
  tryLock: allUndefined<OptionsOf<Mutex['tryLock'], 0>>({ signal: undefined, timeout: undefined }),
};

export const election = {
  election: allUndefined<ElectionOptions>({ session: undefined }),
  campaign: allUndefined<CampaignOptions>({ signal: undefined, timeout: undefined }),
  resume: allUndefined<ResumeOptions>({ ...callFields, token: undefined }),
  observe: allUndefined<ObserveOptions>({ signal: undefined }),
  proclaim: allUndefined<OptionsOf<Leadership['proclaim'], 1>>({
    ...callFields,
  }),
};

export const registry = {
  registry: allUndefined<RegistryOptions>({ prefix: undefined, ttl: undefined }),
  register: allUndefined<RegisterOptions>({
    ...callFields,
    ttl: undefined,
    session: undefined,
    health: undefined,
  }),
  health: allUndefined<HealthCheckOptions>({
    check: () => true,
    interval: undefined,
    timeout: undefined,
    failureThreshold: undefined,
    successThreshold: undefined,
  }),
  discover: allUndefined<OptionsOf<Registry['discover'], 1>>({
    ...callFields,
    ejection: undefined,
  }),
  ejection: allUndefined<EjectionOptions>({
    errors: undefined,
    window: undefined,
    duration: undefined,
  }),
  instance: allUndefined<InstanceDescription>({
    address: '127.0.0.1',
    port: 8080,
    id: undefined,
    metadata: undefined,
    weight: undefined,
    zone: undefined,
  }),
  picker: allUndefined<PickerOptions>({ random: undefined }),
  update: allUndefined<RegistrationUpdate>({
    address: undefined,
    port: undefined,
    metadata: undefined,
    weight: undefined,
    zone: undefined,
    status: undefined,
  }),
  deregister: allUndefined<DeregisterOptions>({
    ...callFields,
    drain: undefined,
  }),
  pick: allUndefined<PickOptions>({
    filter: undefined,
    includeUnhealthy: undefined,
    fallback: undefined,
  }),
  ready: allUndefined<ReadyOptions>({ timeout: undefined, signal: undefined, healthy: undefined }),
  changes: allUndefined<ChangesOptions>({ initial: undefined }),
};

export const cli = {
  io: allUndefined<RunIo>({
    out: () => undefined,
    err: () => undefined,
    signal: AbortSignal.abort(),
    env: undefined,
  }),
};

/** The methods take those objects as they are. */
export async function calls(
  etcd: Etcd,
  lock: Mutex & RWMutex,
  semaphore: Semaphore,
  leader: Election,
  services: Registry,
  registration: Registration,
  set: ServiceSet,
): Promise<void> {
  await etcd.get('k', client.get);
  await etcd.set('k', 1, client.set);
  await etcd.setnx('k', 1, client.create);
  await etcd.delete('k', client.delete);
  await etcd.readdir('dir/', client.readdir);
  await etcd.compact(1n, client.compact);
  await etcd.txn([client.rawCompare], [{ requestRange: client.rawRange }], [], client.call);
  await lock.lock(mutex.acquire);
  await lock.tryLock(mutex.tryLock);
  await lock.readLock(mutex.acquire);
  await semaphore.acquire(mutex.acquire);
  await leader.campaign('me', election.campaign);
  await leader.resume(election.resume);
  await services.register('api', registry.instance, registry.register);
  await registration.update(registry.update, client.call);
  await registration.deregister(registry.deregister);
  await services.discover('api', registry.discover);
  await set.ready(registry.ready);
  set.candidates(registry.pick);
  set.pick('random', registry.pick);
  set.changes(registry.changes);
}
