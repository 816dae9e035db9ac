/**
 * Finds what in a value JSON would not carry exactly: anything for which
 * `JSON.parse(JSON.stringify(value))` would not give an equal value back.
 *
 * How it works: one depth-first walk. Plain objects (prototype `Object.prototype`
 * or `null`) and plain arrays are entered; strings, booleans, finite numbers and
 * null pass; everything else is the problem. The path is a stack of keys, turned
 * into text only when something is wrong, so a good value costs one walk.
 */

type Step = string | number;

/** What is wrong with `value`, as `root.jobs[2].at is a Date`, or undefined when JSON carries it exactly. */
export function jsonProblem(value: unknown, root = 'value'): string | undefined {
  const path: Step[] = [];
  const what = walk(value, path, new Set());
  return what === undefined ? undefined : `${pathText(root, path)} ${what}`;
}

// On a problem the walk returns at once, leaving `path` pointing at it.
function walk(value: unknown, path: Step[], ancestors: Set<object>): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `is ${value}`;
    case 'undefined':
      return 'is undefined';
    case 'object':
      return value === null ? undefined : walkObject(value, path, ancestors);
    default:
      return `is a ${typeof value}`;
  }
}

function walkObject(value: object, path: Step[], ancestors: Set<object>): string | undefined {
  if (ancestors.has(value)) return 'is a cycle: it contains itself';
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Array.prototype) {
    const list = value as unknown[];
    ancestors.add(value);
    for (let i = 0; i < list.length; i++) {
      path.push(i);
      if (!(i in list)) return 'is a hole in a sparse array';
      const what = walk(list[i], path, ancestors);
      if (what !== undefined) return what;
      path.pop();
    }
    ancestors.delete(value);
    return undefined;
  }
  if (proto !== Object.prototype && proto !== null) return `is ${className(value)}`;
  const record = value as Record<string, unknown>;
  if (typeof record.toJSON === 'function') return 'has a toJSON method';
  if (Object.getOwnPropertySymbols(value).length > 0) return 'has a symbol key';
  ancestors.add(value);
  // The prototype is Object.prototype or null: for-in sees own keys only.
  for (const key in record) {
    path.push(key);
    const what = walk(record[key], path, ancestors);
    if (what !== undefined) return what;
    path.pop();
  }
  ancestors.delete(value);
  return undefined;
}

function className(value: object): string {
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  if (typeof name !== 'string' || name === '') return 'a class instance';
  return `${/^[AEIO]/.test(name) ? 'an' : 'a'} ${name}`;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function pathText(root: string, path: Step[]): string {
  let text = root;
  for (const step of path) {
    if (typeof step === 'number') text += `[${step}]`;
    else text += IDENTIFIER.test(step) ? `.${step}` : `[${JSON.stringify(step)}]`;
  }
  return text;
}
