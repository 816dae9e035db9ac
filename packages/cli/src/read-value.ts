/**
 * The value `put` stores: the argument itself, stdin when the argument is
 * `-`, or a file with `--file PATH`. Stdin and files are taken byte for byte
 * (a trailing newline included) and must be UTF-8 text, as every value the
 * CLI writes is. Stdin is never read unless asked for: in cron and CI it is
 * often /dev/null, and a forgotten VALUE must not store an empty string.
 */
import { readFile } from 'node:fs/promises';
import { addAbortSignal } from 'node:stream';
import type { Io } from './command.js';
import { UsageError } from './config.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export async function readValue(
  given: string | undefined,
  file: string | undefined,
  io: Io,
): Promise<string> {
  if (file !== undefined) {
    let bytes: Buffer;
    try {
      bytes = await readFile(file, { signal: io.signal });
    } catch (err) {
      if (io.signal.aborted) throw err;
      throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
    }
    return text(bytes, file);
  }
  if (given !== '-') return given!;
  const chunks: Buffer[] = [];
  for await (const chunk of addAbortSignal(io.signal, process.stdin))
    chunks.push(Buffer.from(chunk as Uint8Array));
  return text(Buffer.concat(chunks), 'stdin');
}

function text(bytes: Buffer, from: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new Error(`the value read from ${from} is not UTF-8 text`);
  }
}
