import type { Socket } from 'node:net';
import { startLimitedHost, startPeer, rssKiB, openFds, hardFdLimit } from './fd-limit.ts';
import { openTunnel } from './socks-client.ts';
const hard = hardFdLimit();
const N = 9968;
const host = await startLimitedHost({ fdLimit: hard, config: { localClients: 'any' }, args: ['--max-connections', '20000', '--log-level', 'warn'], nodeOptions: (process.env.NODEOPTS ?? '').split(' ').filter(Boolean) });
const peer = await startPeer(hard);
const rest = openFds(host.pid);
for (let round = 0; round < 8; round++) {
  const t: Socket[] = []; let next = 0;
  await Promise.all(Array.from({ length: 200 }, async () => { while (next < N) { next++; t.push(await openTunnel(host.port, { host: '127.0.0.1', port: peer.port })); } }));
  const held = rssKiB(host.pid);
  for (const s of t) s.destroy();
  while (openFds(host.pid) > rest) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 2000));
  console.log('round', round, 'held', held, 'after', rssKiB(host.pid));
}
await host.stop(); await peer.stop();
