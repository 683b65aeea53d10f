/**
 * The one place that knows which connector speaks which protocol. A chain looks its hops up
 * here, so adding a protocol adds an entry, not a case in every caller.
 */
import { httpConnector } from './http.ts';
import { socks4Connector, socks4aConnector } from './socks4.ts';
import { socks5Connector } from './socks5.ts';
import type { Connector, ConnectorProtocol } from './types.ts';

const CONNECTORS: Readonly<Record<ConnectorProtocol, Connector>> = {
  socks5: socks5Connector,
  socks4: socks4Connector,
  socks4a: socks4aConnector,
  http: httpConnector,
};

export function connectorFor(protocol: ConnectorProtocol): Connector {
  return CONNECTORS[protocol];
}

export const CONNECTOR_PROTOCOLS: readonly ConnectorProtocol[] = Object.keys(
  CONNECTORS,
) as ConnectorProtocol[];

export type {
  BindResult,
  Connector,
  ConnectorProtocol,
  ConnectorRequest,
  ConnectorResult,
  HopCredentials,
} from './types.ts';
export { isBindResult } from './types.ts';
