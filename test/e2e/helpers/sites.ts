/**
 * The web sites the browser visits: plain HTTP servers on loopback that record each request
 * (the Host header says which name the browser used; the peer port ties it to a connection).
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface SiteRequest {
  readonly host: string;
  readonly url: string;
  readonly remotePort: number;
}

export interface Site {
  readonly name: string;
  readonly port: number;
  readonly requests: SiteRequest[];
  url(path?: string): string;
  close(): Promise<void>;
}

/** A site answering for `name` (the browser maps it to 127.0.0.1 with --host-resolver-rules). */
export async function startSite(name: string): Promise<Site> {
  const requests: SiteRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    requests.push({
      host: req.headers.host ?? '',
      url: req.url ?? '',
      remotePort: req.socket.remotePort ?? 0,
    });
    const body = `<!doctype html><title>${name}</title><h1>Hello from ${name}</h1>`;
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    requests,
    url: (path = '/') => `http://${name}:${port}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        // Keep-alive connections from the browser would hold close() open.
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
