/**
 * UDP and SOCKS5 UDP ASSOCIATE helpers for the UDP tests: bound peers that record (and can echo)
 * datagrams, the SOCKS5 UDP request header spelled out byte by byte, the ASSOCIATE handshake on
 * a control connection, and a probe for whether a relay port is free again.
 */
import { type RemoteInfo, type Socket as UdpSocket, createSocket } from 'node:dgram';
import type { Socket } from 'node:net';
import assert from 'node:assert/strict';
import { bytesToIpv4, bytesToIpv6 } from '../../native-host/src/protocol/address.ts';
import { ByteReader, connectTo } from './net.ts';

export const ATYP_IPV4 = 0x01;
export const ATYP_DOMAIN = 0x03;
export const ATYP_IPV6 = 0x04;
export const LOOPBACK4 = [127, 0, 0, 1];
/** How long "nothing arrives" is waited for; loopback answers in well under a millisecond. */
export const QUIET_MS = 150;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Received {
  readonly msg: Buffer;
  readonly rinfo: RemoteInfo;
}

export interface UdpPeer {
  readonly socket: UdpSocket;
  readonly host: string;
  readonly port: number;
  readonly received: Received[];
  /** The next datagram not yet taken, waiting up to `timeoutMs` (2 s) for it. */
  next(timeoutMs?: number): Promise<Received>;
  close(): void;
}

/** A bound UDP socket that records what it receives; an echo server when `echo` is set. */
export function udpPeer(host = '127.0.0.1', echo = false): Promise<UdpPeer> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const received: Received[] = [];
  let taken = 0;
  let wake: (() => void) | undefined;
  socket.on('message', (msg, rinfo) => {
    received.push({ msg, rinfo });
    if (echo) socket.send(msg, rinfo.port, rinfo.address);
    wake?.();
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, host, () => {
      socket.off('error', reject);
      resolve({
        socket,
        host,
        port: socket.address().port,
        received,
        async next(timeoutMs = 2000) {
          const deadline = Date.now() + timeoutMs;
          while (received.length <= taken) {
            const left = deadline - Date.now();
            if (left <= 0) throw new Error(`no datagram within ${timeoutMs} ms`);
            await new Promise<void>((done) => {
              const t = setTimeout(done, left);
              wake = () => {
                clearTimeout(t);
                done();
              };
            });
            wake = undefined;
          }
          return received[taken++]!;
        },
        close: () => socket.close(),
      });
    });
  });
}

export function portBytes(port: number): number[] {
  return [port >> 8, port & 0xff];
}

/** A SOCKS5 UDP request header + payload, spelled out byte by byte. */
export function datagram(atyp: number, addr: number[], port: number, payload: string, frag = 0): Buffer {
  return Buffer.concat([Buffer.from([0, 0, frag, atyp, ...addr, ...portBytes(port)]), Buffer.from(payload)]);
}

/** The DST.ADDR bytes of a domain name: its length, then the name. */
export function domainBytes(name: string): number[] {
  return [name.length, ...Buffer.from(name)];
}

export interface Association {
  readonly control: Socket;
  readonly reader: ByteReader;
  /** VER of the reply. */
  readonly version: number;
  readonly rep: number;
  /** ATYP of BND.ADDR. */
  readonly atyp: number;
  readonly host: string;
  readonly port: number;
}

/**
 * Greets without auth and sends UDP ASSOCIATE (for 0.0.0.0:0 unless told otherwise); returns
 * the parsed reply.
 */
export async function associate(
  serverPort: number,
  options: { connectHost?: string; atyp?: number; addr?: number[]; port?: number } = {},
): Promise<Association> {
  const control = await connectTo(serverPort, options.connectHost ?? '127.0.0.1');
  const reader = new ByteReader(control);
  const atyp = options.atyp ?? ATYP_IPV4;
  const addr = options.addr ?? [0, 0, 0, 0];
  control.write(
    Buffer.from([0x05, 0x01, 0x00, 0x05, 0x03, 0x00, atyp, ...addr, ...portBytes(options.port ?? 0)]),
  );
  assert.deepEqual([...(await reader.read(2))], [0x05, 0x00]);
  const head = await reader.read(4);
  const bndAtyp = head[3]!;
  const bnd = await reader.read(bndAtyp === ATYP_IPV6 ? 18 : 6);
  const host = bndAtyp === ATYP_IPV6 ? bytesToIpv6(bnd, 0) : bytesToIpv4(bnd, 0);
  return {
    control,
    reader,
    version: head[0]!,
    rep: head[1]!,
    atyp: bndAtyp,
    host,
    port: bnd.readUInt16BE(bnd.length - 2),
  };
}

/** Whether a UDP port on 127.0.0.1 is free (i.e. the relay's socket there is closed). */
export async function udpPortFree(port: number): Promise<boolean> {
  const probe = createSocket('udp4');
  return new Promise((resolve) => {
    probe.once('error', () => resolve(false));
    probe.bind({ port, address: '127.0.0.1', exclusive: true }, () => {
      probe.close();
      resolve(true);
    });
  });
}
