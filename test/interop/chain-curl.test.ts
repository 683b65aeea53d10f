/**
 * curl, a client nobody here wrote, through our server whose every request goes through a
 * two-hop chain of real servers (microsocks with a password, then danted with a system user)
 * to a local HTTP server: a small body byte for byte and a 40 MB body by sha256. curl sends the
 * host name (--socks5-hostname) and it stays a name until danted, the exit, resolves it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Route, Upstream } from '../../shared/config/schema.ts';
import { ChainOutbound } from '../../native-host/src/outbound/chain.ts';
import type { Address } from '../../native-host/src/protocol/address.ts';
import { type CurlResult, curl as runCurl } from '../helpers/configs.ts';
import {
  DANTE_USER,
  type Daemon,
  type Dante,
  startDante,
  startMicrosocks,
} from '../helpers/reference-servers.ts';
import { savedCredentials } from '../helpers/memory-credentials.ts';
import { type TestServer, startSocksServer } from '../helpers/socks-server.ts';
import { SMALL_BODY, type TestHttpServer, startHttpServer } from '../helpers/switchyard-process.ts';
import { waitFor } from '../helpers/wait.ts';

const MICRO_USER = { username: 'micro', password: 'micro-secret' };
const TEST_TIMEOUT = 20_000;

/** curl with time for the 40 MB body, keeping the first 1 MiB of it (the small body fits). */
const curl = (args: readonly string[]): Promise<CurlResult> =>
  runCurl(args, { maxTimeS: 15, keepBytes: 1024 * 1024 });

describe('curl > our server > microsocks (password) > danted (system user) > HTTP', () => {
  let http: TestHttpServer;
  let micro: Daemon;
  let dante: Dante;
  let server: TestServer;
  /** What reached our dispatcher: the name curl sent, not an address. */
  const destinations: Address[] = [];

  before(async () => {
    [http, micro, dante] = await Promise.all([
      startHttpServer(),
      startMicrosocks(MICRO_USER),
      startDante({ socksmethod: 'username' }),
    ]);
    const upstreams: Upstream[] = [
      {
        id: 'micro',
        type: 'socks5',
        host: '127.0.0.1',
        port: micro.port,
        username: MICRO_USER.username,
      },
      {
        id: 'dante',
        type: 'socks5',
        host: '127.0.0.1',
        port: dante.port,
        username: DANTE_USER.username,
      },
    ];
    const route: Route = { id: 'interop', hops: ['micro', 'dante'], onFirstHopDown: 'fail' };
    const chain = new ChainOutbound({
      route,
      upstreams: new Map(upstreams.map((u) => [u.id, u])),
      credentials: savedCredentials({ micro: MICRO_USER.password, dante: DANTE_USER.password }),
      timeouts: { connectMs: 3000, hopHandshakeMs: 3000, bindMs: 3000 },
    });
    server = await startSocksServer({
      dispatch: (request) => {
        destinations.push(request.destination);
        return { kind: 'allow', outbound: chain };
      },
    });
  });

  after(async () => {
    await Promise.all([server?.close(), http?.close(), micro?.stop(), dante?.stop()]);
  });

  const proxy = () => `127.0.0.1:${server.port}`;

  test('the small body arrives byte for byte, the name resolved only at danted', {
    timeout: TEST_TIMEOUT,
  }, async () => {
    const r = await curl(['--socks5-hostname', proxy(), `http://localhost:${http.port}${http.smallPath}`]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.deepEqual(r.body, SMALL_BODY);
    assert.deepEqual(destinations.at(-1), { type: 'domain', host: 'localhost', port: http.port });
    // microsocks was asked for danted, by address; danted then connected to the name's address.
    await waitFor(() => micro.output().includes(`connected to 127.0.0.1:${dante.port}`), 'microsocks log');
    await waitFor(
      () =>
        server.logs.some((l) => /tunnel closed .*via="route interop \(micro > dante\)".*result=done/.test(l)),
      'the tunnel line naming the route',
    );
  });

  test('the 40 MB body arrives with its sha256', { timeout: TEST_TIMEOUT }, async () => {
    const r = await curl(['--socks5-hostname', proxy(), `http://localhost:${http.port}${http.largePath}`]);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(r.bytes, http.largeSize);
    assert.equal(r.sha256, http.largeSha256);
  });
});
