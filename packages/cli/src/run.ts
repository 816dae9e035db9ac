/**
 * Parses a command line and runs the command. `run` returns the exit code:
 * 0 on success, 1 when the command failed (not found, unreachable cluster),
 * 2 for a mistake in the command line; `lock` and `elect` pass a child
 * command's own code through, or one of those listed in exit.ts.
 *
 * `lock`, `elect`, `services` and `group` are imported when they run, and
 * `barrier` imports its library when it runs, so that the other commands do not
 * load the mutex, election, registry, group and barrier libraries.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { EtcdError } from '@etcdkit/client';
import { BARRIER_USAGE, barrier } from './barrier.js';
import type { Io, Parsed } from './command.js';
import * as commands from './commands.js';
import { CONNECTION_FLAGS, CONNECTION_HELP, connect, UsageError } from './config.js';
import { EXIT_FAILED, EXIT_USAGE, stoppedExitCode } from './exit.js';
import { DEFAULT_GRACE_SECONDS, ELECT_USAGE, LOCK_USAGE } from './holds.js';

type Flags = NonNullable<ParseArgsConfig['options']>;

interface Command {
  run: (etcd: Parameters<typeof commands.get>[0], p: Parsed, io: Io) => Promise<number>;
  usage: string;
  about: string;
  flags: Flags;
}

const json = { json: { type: 'boolean' } } as const;
const hold = { ttl: { type: 'string' }, grace: { type: 'string' }, ...json } as const;

const COMMANDS: Record<string, Command> = {
  get: {
    run: commands.get,
    usage: 'get KEY [--json]',
    about: 'print the value of KEY',
    flags: json,
  },
  put: {
    run: commands.put,
    usage: 'put KEY VALUE|- [--ttl SECONDS] [--json] | put KEY --file PATH [--ttl SECONDS]',
    about: 'store VALUE under KEY; "-" reads the value from stdin, --file from a file',
    flags: { ttl: { type: 'string' }, file: { type: 'string' }, ...json },
  },
  del: {
    run: commands.del,
    usage: 'del KEY [--prefix] [--json]',
    about: 'delete KEY (or every key under it)',
    flags: { prefix: { type: 'boolean' }, ...json },
  },
  ls: {
    run: commands.ls,
    usage: 'ls [PREFIX] [--keys-only] [--json]',
    about: 'list keys and values under PREFIX, page by page, at one revision',
    flags: { 'keys-only': { type: 'boolean' }, ...json },
  },
  watch: {
    run: commands.watch,
    usage: 'watch KEY [--prefix] [--from-rev N] [--json]',
    about: 'print changes to KEY (or under it) until Ctrl-C',
    flags: {
      prefix: { type: 'boolean' },
      'from-rev': { type: 'string' },
      ...json,
    },
  },
  lock: {
    run: async (etcd, p, io) => (await import('./lock.js')).lock(etcd, p, io),
    usage: LOCK_USAGE,
    about:
      "run COMMAND while holding the lock NAME; it is stopped if the lock is lost (exit 75); COMMAND's exit code is returned",
    flags: hold,
  },
  elect: {
    run: async (etcd, p, io) => (await import('./elect.js')).elect(etcd, p, io),
    usage: ELECT_USAGE,
    about:
      'campaign in election NAME and lead until Ctrl-C (or run COMMAND while leading; exit 75 if leadership is lost); --listen prints each leader',
    flags: { listen: { type: 'boolean' }, ...hold },
  },
  services: {
    run: async (etcd, p, io) => (await import('./services.js')).services(etcd, p, io),
    usage:
      'services ls [SERVICE] [--json] | services watch SERVICE [--json]  [--registry-prefix P]',
    about: 'list registered services or instances, or watch a service',
    flags: { 'registry-prefix': { type: 'string' }, ...json },
  },
  group: {
    run: async (etcd, p, io) => (await import('./group.js')).group(etcd, p, io),
    usage:
      'group join GROUP ID [--capability K=V]... [--ttl SECONDS] [--grace SECONDS] [--json] [-- COMMAND [ARGS...]] | group ls GROUP [--json] | group watch GROUP [--json] | group owner GROUP KEY [--json]',
    about:
      'be member ID of GROUP until Ctrl-C (or while COMMAND runs; exit 75 if membership is lost); list or watch its members; print the member that owns KEY',
    flags: { capability: { type: 'string', multiple: true }, ...hold },
  },
  barrier: {
    run: barrier,
    usage: BARRIER_USAGE,
    about:
      'hold, release or wait for the barrier KEY; or enter the double barrier KEY, wait for N participants, run COMMAND (or wait for Ctrl-C) and leave when all have left',
    flags: { count: { type: 'string' }, ...hold },
  },
  lease: {
    run: commands.lease,
    usage: 'lease ls [--json] | lease ttl ID [--keys] [--json]',
    about: 'list leases, or show the time to live (and keys) of one',
    flags: { keys: { type: 'boolean' }, ...json },
  },
};

const EXIT_HELP = `Exit codes: 0 success; 1 failed (not found, cluster unreachable); 2 bad command line.
lock, elect, group join and barrier enter with a COMMAND: its own code, or 128+N if signal N
  ended it; 75 the lock, leadership, membership or place in the barrier was lost while it ran
  (it was stopped: SIGTERM, then SIGKILL after --grace, default ${DEFAULT_GRACE_SECONDS} s);
  126 / 127 it cannot run / was not found; 130 (143, 129) etcdkit was stopped by SIGINT (SIGTERM, SIGHUP).`;

export function usage(): string {
  const lines = Object.values(COMMANDS).map((c) => `  etcdkit ${c.usage}\n      ${c.about}`);
  return `etcdkit — etcd from the shell\n\nCommands:\n${lines.join('\n')}\n\n${CONNECTION_HELP}\n\n${EXIT_HELP}\n\netcdkit COMMAND --help shows one command.`;
}

export interface RunIo extends Io {
  env?: NodeJS.ProcessEnv | undefined;
}

export async function run(argv: string[], io: RunIo): Promise<number> {
  const { name, rest } = splitCommand(argv);
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    (name ? io.out : io.err)(usage());
    return name ? 0 : EXIT_USAGE;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.err(`etcdkit: unknown command "${name}"\n\n${usage()}`);
    return EXIT_USAGE;
  }
  const split = rest.indexOf('--');
  const words = split === -1 ? rest : rest.slice(0, split);
  const child = split === -1 ? [] : rest.slice(split + 1);
  try {
    const parsed = parseArgs({
      args: words,
      allowPositionals: true,
      strict: true,
      options: { ...CONNECTION_FLAGS, ...command.flags, help: { type: 'boolean', short: 'h' } },
    });
    if (parsed.values.help) {
      const exits = command.flags.grace ? `\n\n${EXIT_HELP}` : '';
      io.out(`usage: etcdkit ${command.usage}\n  ${command.about}\n\n${CONNECTION_HELP}${exits}`);
      return 0;
    }
    await using etcd = connect(parsed.values as Record<string, string>, io.env);
    return await command.run(
      etcd,
      {
        positionals: parsed.positionals,
        command: child,
        values: parsed.values as Parsed['values'],
      },
      io,
    );
  } catch (err) {
    if (
      err instanceof UsageError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      io.err(`etcdkit ${name}: ${(err as Error).message}\nusage: etcdkit ${command.usage}`);
      return EXIT_USAGE;
    }
    if (io.signal.aborted) return stoppedExitCode(io.signal.reason);
    if (err instanceof EtcdError) {
      io.err(`etcdkit ${name}: ${err.message} (${err.code})`);
      return err.name === 'InvalidArgumentError' ? EXIT_USAGE : EXIT_FAILED;
    }
    io.err(`etcdkit ${name}: ${(err as Error).message ?? String(err)}`);
    return EXIT_FAILED;
  }
}

/**
 * Finds the command name. Connection flags may come before it too, as in
 * `etcdkit --transport grpc get KEY`: they are parsed with the command's own.
 */
function splitCommand(argv: string[]): { name: string | undefined; rest: string[] } {
  let i = 0;
  for (;;) {
    const flag = /^--([^=]+)(=.*)?$/.exec(argv[i] ?? '');
    if (!flag || !Object.hasOwn(CONNECTION_FLAGS, flag[1]!)) break;
    const takesValue = CONNECTION_FLAGS[flag[1] as keyof typeof CONNECTION_FLAGS].type === 'string';
    i += takesValue && flag[2] === undefined ? 2 : 1;
  }
  return { name: argv[i], rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
}
