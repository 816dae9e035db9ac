/** Option checks shared by the election's methods. */
import { InvalidArgumentError } from '@etcdkit/client';

/** Rejects option names the method does not know, so a typo never goes unnoticed. */
export function checkOptions(method: string, options: object, allowed: ReadonlySet<string>): void {
  if (typeof options !== 'object' || options === null)
    throw new InvalidArgumentError(`${method}: options must be an object`);
  for (const name of Object.keys(options)) {
    if (!allowed.has(name)) {
      throw new InvalidArgumentError(
        `${method}: unknown option "${name}" (known: ${[...allowed].join(', ')})`,
      );
    }
  }
}
