/**
 * The two sides of a request over the host protocol, for every client of it (the extension's
 * native-messaging port, the control client of the CLI and the bridge) and the service:
 * - an error that carries the protocol's code and, for an invalid config, its issues;
 * - the requests sent and not yet answered, by id, each with its own timeout.
 * No Node and no DOM here: the caller hands in its platform's timers.
 */
import type { ProtocolIssue } from './protocol.ts';

/** An error with a code a client can act on (ErrorCode, or a client's own additions). */
export class CodedError<C extends string> extends Error {
  readonly code: C;
  readonly issues: readonly ProtocolIssue[] | undefined;

  constructor(code: C, message: string, issues?: readonly ProtocolIssue[]) {
    super(message);
    this.code = code;
    this.issues = issues;
  }
}

/** setTimeout and clearTimeout as the caller's platform (or a test) has them. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

interface Entry<T> extends Waiter<T> {
  readonly timer: unknown;
}

/**
 * Requests sent and not yet answered: each gets the next id, is settled by the reply with that
 * id, rejects by itself when its time is up, or with all the others when the connection goes.
 */
export class PendingRequests<T> {
  readonly #timers: Timers;
  readonly #waiting = new Map<number, Entry<T>>();
  #nextId = 1;

  constructor(timers: Timers) {
    this.#timers = timers;
  }

  /**
   * A fresh id and the promise its reply settles, to be sent with that id. After `timeoutMs`
   * (never when 0) the promise rejects with `timedOut()` and the id is forgotten.
   */
  open(timeoutMs: number, timedOut: () => Error): { id: number; reply: Promise<T> } {
    const id = this.#nextId++;
    const reply = new Promise<T>((resolve, reject) => {
      const timer =
        timeoutMs > 0
          ? this.#timers.setTimeout(() => {
              this.#waiting.delete(id);
              reject(timedOut());
            }, timeoutMs)
          : undefined;
      this.#waiting.set(id, { resolve, reject, timer });
    });
    return { id, reply };
  }

  /** The waiter for `id`, no longer pending and its timer stopped; undefined if none waits. */
  take(id: number): Waiter<T> | undefined {
    const entry = this.#waiting.get(id);
    if (entry === undefined) return undefined;
    this.#waiting.delete(id);
    if (entry.timer !== undefined) this.#timers.clearTimeout(entry.timer);
    return entry;
  }

  /** Rejects every request still waiting, each with an error of its own. */
  rejectAll(error: () => Error): void {
    for (const id of [...this.#waiting.keys()]) this.take(id)?.reject(error());
  }
}
