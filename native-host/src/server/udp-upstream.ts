/**
 * The upstream egress of a UDP association: client datagrams, SOCKS header and all, go as they
 * are to an upstream SOCKS5 server's relay, and that relay's datagrams come back as they are.
 * The upstream reads the header, resolves names and sends; nothing is resolved here, so a name
 * never leaks to this machine's resolver. One socket, and only the relay may answer on it.
 */
import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram';
import type { Endpoint } from '../outbound/outbound.ts';
import { type UdpDatagram, parseUdpDatagram } from '../protocol/socks5.ts';
import {
  type EgressFactory,
  type EgressHost,
  type UdpEgress,
  bindUdp,
  canonicalIp,
  closeQuietly,
  familyOf,
} from './udp-relay.ts';

export interface UpstreamEgressOptions {
  /** The upstream's relay (BND of its UDP ASSOCIATE reply), as an IP. */
  readonly relay: Endpoint;
  /**
   * The local address of the control connection. Servers accept datagrams only from the IP
   * that holds the association, so we send from that one where the family allows.
   */
  readonly localHost: string | undefined;
}

export function upstreamEgress(options: UpstreamEgressOptions): EgressFactory {
  return async (host) => {
    const relayIp = canonicalIp(options.relay.host);
    const family = familyOf(relayIp);
    const text = options.localHost;
    const local = text === undefined ? undefined : canonicalIp(text);
    let bindHost = family === 6 ? '::' : '0.0.0.0';
    if (text !== undefined && local !== undefined && familyOf(local) === family) {
      // A link-local address can only be bound with its zone.
      bindHost = text.includes('%') ? text : local;
    }
    const socket = await bindUdp(family, bindHost);
    // The zone (if any) is needed to reach a link-local relay, so its original text is kept.
    const target = family === 4 ? relayIp : options.relay.host;
    return new UpstreamEgress(host, socket, { host: target, port: options.relay.port }, relayIp);
  };
}

class UpstreamEgress implements UdpEgress {
  readonly resolvesHere = false;
  private readonly host: EgressHost;
  private readonly socket: UdpSocket;
  private readonly relay: Endpoint;
  private readonly relayIp: string;
  private closed = false;
  private readonly sent = (error: Error | null): void => {
    if (error) this.host.socketError('egress', error);
  };

  constructor(host: EgressHost, socket: UdpSocket, relay: Endpoint, relayIp: string) {
    this.host = host;
    this.socket = socket;
    this.relay = relay;
    this.relayIp = relayIp;
    socket.on('message', (msg, rinfo) => this.fromRelay(msg, rinfo));
    socket.on('error', (error) => host.socketError('egress', error));
  }

  forward(msg: Buffer, datagram: UdpDatagram, _address: string | undefined, _rinfo: RemoteInfo): void {
    this.host.sentUp(msg.length - datagram.dataOffset);
    try {
      // The header the client wrote is the request to the upstream: it goes unchanged.
      this.socket.send(msg, this.relay.port, this.relay.host, this.sent);
    } catch (error) {
      this.host.socketError('egress', error);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.socket);
  }

  private fromRelay(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.host.finished()) return;
    if (
      rinfo.port !== this.relay.port ||
      (rinfo.address !== this.relayIp && canonicalIp(rinfo.address) !== this.relayIp)
    ) {
      // Anyone who learns our egress port could otherwise write to the client.
      this.host.drop('datagram from other than the upstream relay', rinfo);
      return;
    }
    let datagram: UdpDatagram;
    try {
      datagram = parseUdpDatagram(msg);
    } catch {
      this.host.drop('malformed header from the upstream relay', rinfo);
      return;
    }
    // The upstream's header already names the sender, in the form the client expects.
    this.host.toClient(msg, msg.length - datagram.dataOffset);
  }
}
