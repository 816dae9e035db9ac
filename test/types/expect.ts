/** `expectType<T>()(value)` compiles only when `value` is exactly a `T`: no subtype, no supertype. */
export function expectType<T>(): <U>(
  value: U & (Equal<T, U> extends true ? unknown : never),
) => void {
  return (value) => void value;
}

type Equal<A, B> =
  (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;

/** The optional fields of `T`. */
export type OptionalKeys<T> = {
  [K in keyof T]-?: object extends Pick<T, K> ? K : never;
}[keyof T];

/**
 * Compiles only when `options` names every optional field of `T` and `T`
 * takes `undefined` in each of them, as `exactOptionalPropertyTypes` requires
 * it to be declared (`field?: Type | undefined`).
 */
export function allUndefined<T>(options: T & { [K in OptionalKeys<T>]-?: undefined }): T {
  return options;
}
