/**
 * `Registry` is the entry point: it names where services live in etcd
 * (`prefix`) and how long an unrenewed registration survives (`ttl`), checks
 * input once, and hands out registrations (for instances) and service sets
 * (for consumers). `close()` deregisters and closes everything it handed out.
 */
import { randomUUID } from 'node:crypto';
import {
  type CallOptions,
  type Etcd,
  InvalidArgumentError,
  isClient,
  Session,
} from '@etcdkit/client';
import { checkHealthOptions, type HealthCheckOptions } from './health-check.js';
import {
  decodeInstance,
  type InstanceDescription,
  recordFor,
  type ServiceInstance,
  serviceDir,
} from './instance.js';
import { Registration } from './registration.js';
import { ServiceSet, type ServiceSetOptions } from './service-set.js';
import type { SessionSource } from './session-provider.js';
import { checkDuration, checkName, checkOptions, checkPrefix, checkTtl } from './validate.js';

export interface RegistryOptions {
  /** Key prefix under which services live: keys are `<prefix>/<service>/<id>`. Default '/services'. */
  prefix?: string | undefined;
  /**
   * TTL in seconds of each registration's lease: how long a crashed instance
   * stays listed. Default: the client's `sessionTtl` (15 s unless set), the
   * one place where a process chooses how fast its crashes are noticed.
   */
  ttl?: number | undefined;
}

export interface RegisterOptions extends CallOptions {
  /** This registration's lease TTL in seconds. Default: the registry's `ttl`. */
  ttl?: number | undefined;
  /**
   * Put the key on this session's lease instead of a session of its own
   * ('shared': the client's shared session). The registration never closes a
   * session it did not create: deregistering deletes its key instead. After a
   * given session is lost it continues on sessions of its own with the same
   * TTL; with 'shared' it takes the client's next shared session.
   */
  session?: Session | 'shared' | undefined;
  /**
   * A check the instance runs on itself. Its first run happens before the key
   * is written and decides whether the instance appears healthy; later runs
   * flip `healthy` in the stored record after `failureThreshold` failures or
   * `successThreshold` successes in a row. An unhealthy instance stays
   * registered; consumers pass it over while a healthy one exists.
   */
  health?: HealthCheckOptions | undefined;
}

export const DEFAULT_PREFIX = '/services';
/** The TTL of registrations made with a client that does not say (an older copy of the client package). */
export const DEFAULT_TTL = 15;

const REGISTRY_OPTIONS = ['prefix', 'ttl'];
const REGISTER_OPTIONS = ['ttl', 'session', 'health', 'signal', 'timeout'];
const READ_OPTIONS = ['signal', 'timeout'];
const LIST_PAGE_SIZE = 1000;

export class Registry {
  /** The key prefix, without a trailing slash. */
  readonly prefix: string;
  /** Default lease TTL of registrations, in seconds. */
  readonly ttl: number;
  readonly #client: Etcd<unknown>;
  readonly #registrations = new Set<Registration>();
  readonly #sets = new Set<ServiceSet>();

  /**
   * Works with a client of any codec: the registry writes and reads its values
   * as bytes of its own JSON format. Keys are relative to the client's keyPrefix.
   */
  constructor(client: Etcd<unknown>, options: RegistryOptions = {}) {
    checkOptions('Registry', options, REGISTRY_OPTIONS);
    if (!isClient(client)) {
      throw new InvalidArgumentError('new Registry(client): client must be an Etcd client');
    }
    this.#client = client;
    this.prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
    this.ttl = checkTtl(options.ttl ?? client.sessionTtl ?? DEFAULT_TTL);
  }

  /**
   * Registers an instance of `service` and resolves once its key is stored.
   * Everything is checked before anything is written. The registration comes
   * back by itself after its lease is lost, until `deregister()`.
   */
  async register(
    service: string,
    instance: InstanceDescription,
    options: RegisterOptions = {},
  ): Promise<Registration> {
    checkOptions('register', options, REGISTER_OPTIONS);
    checkName(service, 'service');
    if (typeof instance !== 'object' || instance === null) {
      throw new InvalidArgumentError('register: the instance must be an object');
    }
    checkOptions('register', instance, ['id', 'address', 'port', 'metadata', 'weight', 'zone']);
    const record = recordFor(instance.id ?? randomUUID(), instance);
    const { session } = options;
    if (session !== undefined && session !== 'shared' && !(session instanceof Session)) {
      throw new InvalidArgumentError("register: session must be a Session or 'shared'");
    }
    if (session !== undefined && options.ttl !== undefined) {
      throw new InvalidArgumentError('register: ttl and session cannot be combined');
    }
    const source: SessionSource =
      session === 'shared'
        ? { kind: 'shared' }
        : session !== undefined
          ? { kind: 'given', session }
          : { kind: 'own', ttl: checkTtl(options.ttl ?? this.ttl) };
    const health = options.health === undefined ? undefined : checkHealthOptions(options.health);
    const key = `${serviceDir(this.prefix, service)}${record.id}`;
    const registration = await Registration.create(this.#client, service, key, record, source, {
      signal: options.signal,
      timeout: options.timeout,
      health,
    });
    this.#registrations.add(registration);
    registration.once('deregistered', () => this.#registrations.delete(registration));
    return registration;
  }

  /**
   * The live set of `service`'s instances; resolves once the first listing is
   * complete. `timeout` bounds that first listing (TimeoutError); `signal`
   * cancels it, and closes the set whenever it aborts later. `ejection` sets
   * when `noteError()` makes the set pass over an instance.
   */
  async discover(
    service: string,
    options: CallOptions & ServiceSetOptions = {},
  ): Promise<ServiceSet> {
    checkOptions('discover', options, [...READ_OPTIONS, 'ejection']);
    checkName(service, 'service');
    if (options.timeout !== undefined) checkDuration(options.timeout, 'timeout');
    const set = await ServiceSet.open(
      this.#client,
      service,
      serviceDir(this.prefix, service),
      options,
    );
    this.#sets.add(set);
    set.once('closed', () => this.#sets.delete(set));
    return set;
  }

  /** The instances of `service` right now, sorted by ID: one read, no watch. Malformed values are skipped. */
  async instances(service: string, options: CallOptions = {}): Promise<ServiceInstance[]> {
    checkOptions('instances', options, READ_OPTIONS);
    checkName(service, 'service');
    const dir = serviceDir(this.prefix, service);
    const found: ServiceInstance[] = [];
    for await (const kv of this.#client.range(dir, { pageSize: LIST_PAGE_SIZE, ...options })) {
      try {
        found.push(decodeInstance(service, dir, kv));
      } catch {
        // not an instance this contract can read
      }
    }
    return found.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Names of the services with at least one key, sorted. Reads keys only. */
  async services(options: CallOptions = {}): Promise<string[]> {
    checkOptions('services', options, READ_OPTIONS);
    const dir = `${this.prefix}/`;
    const names = new Set<string>();
    const keys = this.#client.range(dir, { keysOnly: true, pageSize: LIST_PAGE_SIZE, ...options });
    for await (const kv of keys) {
      const rest = kv.key.slice(dir.length);
      const slash = rest.indexOf('/');
      if (slash > 0 && slash < rest.length - 1) names.add(rest.slice(0, slash));
    }
    return [...names].sort();
  }

  /** Deregisters every registration and closes every service set made by this registry. */
  async close(): Promise<void> {
    const results = await Promise.allSettled([
      ...[...this.#registrations].map((r) => r.deregister()),
      ...[...this.#sets].map((s) => s.close()),
    ]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
