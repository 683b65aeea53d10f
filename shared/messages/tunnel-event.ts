/**
 * One entry of the host's live log, as the extension and `switchyard log` see it: which rule
 * sent a connection where, and how it ended. No secrets: requests never carry any.
 */
export type TunnelEventKind = 'opened' | 'closed' | 'failed' | 'denied';

export interface TunnelEvent {
  /** Position in the host's log, increasing; assigned by the host's log buffer. */
  seq: number;
  /** Milliseconds since the epoch. */
  time: number;
  kind: TunnelEventKind;
  /** The connection's number in this host's run. */
  id: number;
  client: string;
  user?: string;
  proto: 'socks4' | 'socks4a' | 'socks5';
  cmd: 'connect' | 'bind' | 'udp-associate';
  /** host:port as the client named it. */
  dest: string;
  /** The destination host alone, for filtering by site. */
  host: string;
  rule?: string;
  via?: string;
  /** How it ended: 'done', 'idle', 'error', or e.g. 'rep 5 (connection refused)'. */
  result?: string;
  error?: string;
  /** 1-based hop of a chain that failed. */
  hop?: number;
  up?: number;
  down?: number;
  ms?: number;
}
