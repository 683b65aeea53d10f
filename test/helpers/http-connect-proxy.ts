/**
 * A tiny HTTP CONNECT proxy for tests: optional Basic auth, a fixed refusal on demand, and a
 * record of every request head it received (so a test can check what went over the wire,
 * e.g. that a host name arrived unresolved).
 */
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';

export interface HttpProxyOptions {
  /** When set, requests without these Basic credentials get 407. */
  readonly user?: { readonly username: string; readonly password: string };
  /** Scheme offered in Proxy-Authenticate on 407 (default `Basic realm="test"`). */
  readonly challenge?: string;
  /** Answer every CONNECT with this status line instead of connecting, e.g. '403 Forbidden'. */
  readonly refuseWith?: string;
}

export interface RecordedRequest {
  readonly method: string;
  /** The request target exactly as sent: `host:port`, `[v6]:port`. */
  readonly target: string;
  readonly headers: ReadonlyMap<string, string>;
  /** What the proxy answered: 200, 407, 502, ... */
  status: number;
}

export interface HttpConnectProxy {
  readonly port: number;
  readonly server: Server;
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

const MAX_HEAD = 16 * 1024;

function splitTarget(target: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(target);
  if (!m) return undefined;
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

export function startHttpConnectProxy(options: HttpProxyOptions = {}): Promise<HttpConnectProxy> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
  };

  const server = createServer({ allowHalfOpen: true }, (client) => {
    track(client);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEAD) client.destroy();
        return;
      }
      client.off('data', onData);
      client.pause();
      const early = head.subarray(end + 4);
      const lines = head.subarray(0, end).toString('latin1').split('\r\n');
      const [method = '', target = ''] = (lines[0] ?? '').split(' ');
      const headers = new Map<string, string>();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      const record: RecordedRequest = { method, target, headers, status: 0 };
      requests.push(record);
      const answer = (status: string, extra = ''): void => {
        record.status = Number(status.slice(0, 3));
        client.end(`HTTP/1.1 ${status}\r\n${extra}Content-Length: 0\r\n\r\n`);
      };
      if (method !== 'CONNECT') {
        answer('405 Method Not Allowed');
        return;
      }
      if (options.user) {
        const expected = Buffer.from(`${options.user.username}:${options.user.password}`).toString('base64');
        if (headers.get('proxy-authorization') !== `Basic ${expected}`) {
          answer(
            '407 Proxy Authentication Required',
            `Proxy-Authenticate: ${options.challenge ?? 'Basic realm="test"'}\r\n`,
          );
          return;
        }
      }
      if (options.refuseWith) {
        answer(options.refuseWith);
        return;
      }
      const dest = splitTarget(target);
      if (!dest) {
        answer('400 Bad Request');
        return;
      }
      const upstream = connect({ host: dest.host, port: dest.port, allowHalfOpen: true });
      track(upstream);
      upstream.once('error', () => {
        if (record.status === 0) answer('502 Bad Gateway');
        else client.destroy();
      });
      upstream.once('connect', () => {
        record.status = 200;
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        if (early.length > 0) upstream.write(early);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      // Half-closes travel through the pipes; only a reset cuts the other side at once.
      upstream.once('close', (hadError) => (hadError ? client.destroy() : client.end()));
      client.once('close', () => upstream.destroy());
    };
    client.on('data', onData);
  });

  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        server,
        requests,
        close: () =>
          new Promise((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
