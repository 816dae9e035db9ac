/**
 * What `lock` and `elect` share with the command table: their usage lines and
 * defaults, kept apart from lock.ts and elect.ts so that listing the commands
 * does not load the mutex and election libraries.
 */

/** Lease TTL of `lock` and `elect`: how long a holder that vanished blocks the next one. */
export const DEFAULT_HOLD_TTL_SECONDS = 10;

/** Seconds between SIGTERM and SIGKILL: enough for a command to clean up, short next to a lease's TTL. */
export const DEFAULT_GRACE_SECONDS = 5;

export const LOCK_USAGE =
  'lock NAME [--ttl SECONDS] [--grace SECONDS] [--json] -- COMMAND [ARGS...]';

export const ELECT_USAGE =
  'elect NAME [VALUE] [--ttl SECONDS] [--grace SECONDS] [--json] [-- COMMAND [ARGS...]] | elect NAME --listen [--json]';
