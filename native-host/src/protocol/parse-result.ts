/**
 * Parsers are pure functions over the bytes received so far. They answer "need more", or a
 * value plus how many bytes it used; the bytes after `size` belong to the next message (or to
 * the relayed stream), which is why a parse never consumes beyond its own message.
 */
export type ParseResult<T> =
  | { readonly done: false }
  | { readonly done: true; readonly value: T; readonly size: number };

export const NEED_MORE: ParseResult<never> = Object.freeze({ done: false });

export function parsed<T>(value: T, size: number): ParseResult<T> {
  return { done: true, value, size };
}
