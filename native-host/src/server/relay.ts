/**
 * Moves bytes both ways between two established sockets until both directions have ended.
 * Each direction ends on its own (half-close is passed on, never turned into a full close);
 * an error or idle timeout on either side ends the whole tunnel.
 */
import type { Socket } from 'node:net';

export interface RelayOptions {
  /** Payload the client sent before the handshake finished. */
  readonly early: Buffer;
  /** The client already half-closed during the handshake. */
  readonly clientEnded: boolean;
  readonly idleTimeoutMs: number;
}

export interface RelayResult {
  /** Bytes from the client to the destination. */
  readonly bytesUp: number;
  /** Bytes from the destination to the client. */
  readonly bytesDown: number;
  /** Why the tunnel ended: 'done' when both sides closed in order. */
  readonly reason: 'done' | 'idle' | 'error';
  readonly error?: Error;
}

export function relay(client: Socket, upstream: Socket, options: RelayOptions): Promise<RelayResult> {
  return new Promise((resolve) => {
    let reason: RelayResult['reason'] = 'done';
    let firstError: Error | undefined;
    let open = 2;
    // bytesRead/bytesWritten are kept by the sockets anyway; reading them at the end costs
    // nothing on the data path, unlike counting in a 'data' listener.
    const upBase = client.bytesRead - options.early.length;
    const downBase = client.bytesWritten;

    const fail = (why: RelayResult['reason'], error?: Error): void => {
      if (reason === 'done') reason = why;
      firstError ??= error;
      client.destroy();
      upstream.destroy();
    };
    const onClose = (): void => {
      if (--open > 0) return;
      client.off('timeout', onTimeout);
      resolve({
        bytesUp: Math.max(0, client.bytesRead - upBase),
        bytesDown: Math.max(0, client.bytesWritten - downBase),
        reason,
        ...(firstError ? { error: firstError } : {}),
      });
    };
    const onTimeout = (): void => fail('idle');

    client.on('error', (e) => fail('error', e));
    upstream.on('error', (e) => fail('error', e));
    client.once('close', onClose);
    upstream.once('close', onClose);
    // A side that closed completely has nothing more to send or take, so the other side
    // flushes what is pending for it and closes too; otherwise it would linger half-alive.
    const closeOther = (other: Socket) => (hadError: boolean) => {
      if (other.destroyed) return;
      if (hadError) other.destroy();
      else other.end(() => other.destroy());
    };
    client.once('close', closeOther(upstream));
    upstream.once('close', closeOther(client));

    if (options.idleTimeoutMs > 0) {
      // Any byte in either direction touches the client socket (read or write), so one timer
      // on it covers the whole tunnel.
      client.setTimeout(options.idleTimeoutMs);
      client.on('timeout', onTimeout);
    }

    if (options.early.length > 0) upstream.write(options.early);
    if (options.clientEnded) upstream.end();
    else client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
}
