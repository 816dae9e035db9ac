/** How a transport failure is named in messages: its message and its system error code. */

/** The system error code of `err` (ECONNREFUSED, ...), or ''. */
export function errorCode(err: unknown): string {
  if (typeof err !== 'object' || err === null) return '';
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // undici wraps connect failures; the system error is the cause.
  return errorCode((err as { cause?: unknown }).cause);
}

export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = errorCode(err);
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
