import { connect, type Socket } from 'node:net';
import { startLimitedHost, openFds, cpuMs, fdLimitOf } from './fd-limit.ts';
import { startEchoServer } from './net.ts';

const echo = await startEchoServer();
const host = await startLimitedHost({ fdLimit: 64, config: { localClients: process.argv[2] ?? 'owner' }, args: ['--log-level', 'debug'] });
console.log('host', host.pid, 'limit', fdLimitOf(host.pid), 'fds', openFds(host.pid));
function attempt(): Promise<{ s: Socket; result: string }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: host.port });
    let got = Buffer.alloc(0);
    const t = setTimeout(() => resolve({ s, result: 'timeout' }), 3000);
    s.on('error', (e) => { clearTimeout(t); resolve({ s, result: 'error ' + (e as NodeJS.ErrnoException).code }); });
    s.on('connect', () => s.write(Buffer.from([5,1,0,5,1,0,1,127,0,0,1,echo.port>>8,echo.port&255])));
    s.on('data', (c: Buffer) => { got = Buffer.concat([got, c]); if (got.length >= 12) { clearTimeout(t); resolve({ s, result: 'rep ' + got[3] }); } });
    s.on('end', () => { clearTimeout(t); resolve({ s, result: 'end after ' + got.length }); });
  });
}
const held: Socket[] = [];
for (let i = 0; i < 40; i++) {
  const { s, result } = await attempt();
  console.log(i, result, 'fds', openFds(host.pid));
  if (result === 'rep 0') held.push(s); else s.destroy();
}
const c0 = cpuMs(host.pid);
await new Promise((r) => setTimeout(r, 2000));
console.log('cpu over 2s idle', cpuMs(host.pid) - c0, 'alive', host.alive());
console.log(host.stderr().split('\n').filter((l) => !/tunnel (opened|closed)/.test(l)).slice(-30).join('\n'));
for (const s of held) s.destroy();
await new Promise((r) => setTimeout(r, 500));
const { s, result } = await attempt();
console.log('after freeing:', result, 'fds', openFds(host.pid));
s.destroy();
await host.stop(); await echo.close();
