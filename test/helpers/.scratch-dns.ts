import { DirectOutbound } from '../../native-host/src/outbound/direct.ts';
import { startSocksServer } from './socks-server.ts';
import { ByteReader, connectTo, closed } from './net.ts';
const direct = new DirectOutbound({ connectTimeoutMs: 500, bindTimeoutMs: 500, lookup: () => new Promise(() => undefined) });
const socks = await startSocksServer({ timeouts: { handshakeMs: 3000, connectMs: 500 }, dispatch: () => ({ kind: 'allow', outbound: direct }) });
const c = await connectTo(socks.port);
const r = new ByteReader(c);
const name = Buffer.from('hangs.test');
c.write(Buffer.concat([Buffer.from([5,1,0,5,1,0,3,name.length]), name, Buffer.from([0, 80])]));
const t0 = Date.now();
console.log([...(await r.read(2))]);
try { console.log('reply', [...(await r.read(10, 5000))], Date.now() - t0); } catch (e) { console.log('no reply', String(e), Date.now() - t0); }
console.log(socks.logs.slice(-3).join(''));
await socks.close();
