import type { Config } from '../../../shared/config/schema.ts';
import type { ServerSettings } from '../server/types.ts';

/** The slice of the config the SOCKS engine runs on. */
export function serverSettingsFrom(config: Config): ServerSettings {
  return {
    listen: { host: config.listen.host, port: config.listen.port },
    protocols: { socks4: config.listen.socks4, socks5: config.listen.socks5 },
    users: config.users,
    socks4AllowFrom: config.socks4AllowFrom,
    timeouts: config.timeouts,
    limits: config.limits,
  };
}
