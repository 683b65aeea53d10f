/**
 * A minimal SOCKS5 client for load and fault tests: the greeting and the CONNECT in one write
 * (as pipelining clients send them), then the reply, classified so that a test can tell a
 * refusal by reply from a connection that failed without one.
 */
import { isIPv4, type Socket, connect } from 'node:net';
import { ByteReader } from './net.ts';

export interface Destination {
  readonly host: string;
  readonly port: number;
}

/** Greeting (no auth) and CONNECT to `dest`: an IPv4 literal, else a domain name. */
export function connectRequest(dest: Destination): Buffer {
  const port = [dest.port >> 8, dest.port & 0xff];
  if (isIPv4(dest.host)) {
    const ip = dest.host.split('.').map(Number);
    return Buffer.from([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x01, ...ip, ...port]);
  }
  const name = Buffer.from(dest.host, 'latin1');
  return Buffer.concat([
    Buffer.from([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, name.length]),
    name,
    Buffer.from(port),
  ]);
}

/** The server answered, and the answer was no: method 0xFF, or a REP other than 0. */
export class ReplyError extends Error {
  override readonly name = 'ReplyError';
  /** The REP, or undefined when the method negotiation already failed. */
  readonly rep: number | undefined;

  constructor(message: string, rep: number | undefined) {
    super(message);
    this.rep = rep;
  }
}

export interface Answer {
  readonly socket: Socket;
  /** The REP received, or undefined when the connection ended (or failed) without a reply. */
  readonly rep: number | undefined;
  /** From the request being written to the reply (or to the end). */
  readonly ms: number;
  /** Why there was no reply, when there was none. */
  readonly error?: string;
}

/**
 * Sends the request and waits for the 12-byte IPv4 reply. Never rejects: the answer says what
 * happened. A granted socket is returned paused, with nothing of the tunnel's data consumed.
 */
export function ask(socksPort: number, dest: Destination, timeoutMs = 10_000): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: socksPort });
    let got: Buffer = Buffer.alloc(0);
    let sentAt = Date.now();
    const done = (rep: number | undefined, error?: string): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.on('error', () => undefined);
      socket.pause();
      if (rep === 0 && got.length > 12) socket.unshift(got.subarray(12));
      resolve({ socket, rep, ms: Date.now() - sentAt, ...(error === undefined ? {} : { error }) });
    };
    const timer = setTimeout(() => done(undefined, `no reply within ${timeoutMs} ms`), timeoutMs);
    const onData = (chunk: Buffer): void => {
      got = got.length === 0 ? chunk : Buffer.concat([got, chunk]);
      if (got.length >= 2 && got[1] !== 0x00) done(undefined, `method ${got[1]}`);
      else if (got.length >= 4 && got[3] !== 0x00) done(got[3]);
      else if (got.length >= 12) done(0);
    };
    const onEnd = (): void => done(undefined, `ended after ${got.length} reply bytes`);
    const onError = (error: Error): void => done(undefined, error.message);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onError);
    socket.once('connect', () => {
      sentAt = Date.now();
      socket.write(connectRequest(dest));
    });
  });
}

/**
 * Opens a tunnel: resolves with the paused socket once REP 0 arrived. A refusal by reply rejects
 * with ReplyError; anything else (reset, early end, timeout) with a plain Error. The socket is
 * destroyed on any failure.
 */
export async function openTunnel(socksPort: number, dest: Destination, timeoutMs = 10_000): Promise<Socket> {
  const answer = await ask(socksPort, dest, timeoutMs);
  if (answer.rep === 0) return answer.socket;
  answer.socket.destroy();
  if (answer.rep !== undefined) throw new ReplyError(`REP ${answer.rep}`, answer.rep);
  if (answer.error?.startsWith('method ')) throw new ReplyError(answer.error, undefined);
  throw new Error(answer.error ?? 'no reply');
}

/** Writes `text` into a tunnel and resolves with as many bytes read back. */
export async function echoes(socket: Socket, text: string, timeoutMs = 10_000): Promise<string> {
  const reader = new ByteReader(socket);
  socket.resume();
  socket.write(text);
  return (await reader.read(Buffer.byteLength(text), timeoutMs)).toString();
}
