import { connect, type Socket } from 'node:net';
import { startLimitedHost, openFds, cpuMs, fdLimitOf } from './fd-limit.ts';
import { startEchoServer } from './net.ts';

const echo = await startEchoServer();
const host = await startLimitedHost({ fdLimit: 64, config: { localClients: process.argv[2] ?? 'owner' }, args: ['--log-level', 'debug'] });
console.log('host', host.pid, 'limit', fdLimitOf(host.pid), 'fds', openFds(host.pid));
function idle(): Promise<{ s: Socket; result: string }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: host.port });
    s.on('error', (e) => resolve({ s, result: 'error ' + (e as NodeJS.ErrnoException).code }));
    s.on('end', () => resolve({ s, result: 'end' }));
    s.on('close', () => resolve({ s, result: 'close' }));
    s.on('connect', () => setTimeout(() => resolve({ s, result: 'open' }), 300));
  });
}
const held: Socket[] = [];
for (let i = 0; i < 60; i++) {
  const { s, result } = await idle();
  if (i > 40 || result !== 'open') console.log(i, result, 'fds', openFds(host.pid));
  held.push(s);
}
const c0 = cpuMs(host.pid);
await new Promise((r) => setTimeout(r, 2000));
console.log('cpu over 2s', cpuMs(host.pid) - c0, 'alive', host.alive(), 'fds', openFds(host.pid));
console.log(host.stderr().split('\n').slice(-15).join('\n'));
for (const s of held) s.destroy();
await new Promise((r) => setTimeout(r, 500));
console.log('fds after', openFds(host.pid));
await host.stop(); await echo.close();
