/**
 * Where an upstream's password comes from. The chain asks only when a hop needs it, so the
 * secret lives in memory for the duration of one handshake and is never logged or returned.
 */
import type { Upstream } from '../../../shared/config/schema.ts';
import type { HopCredentials } from '../outbound/connectors/types.ts';

export type CredentialSource = (upstream: Upstream) => Promise<HopCredentials | undefined>;

export class MissingCredentialError extends Error {
  override readonly name = 'MissingCredentialError';
}

/** Until the OS keyring store exists: the password is read from the variable the config names. */
export function envCredentials(env: NodeJS.ProcessEnv = process.env): CredentialSource {
  return async (upstream) => {
    if (!upstream.username) return undefined;
    if (!upstream.passwordEnv) return { username: upstream.username, password: '' };
    const password = env[upstream.passwordEnv];
    if (password === undefined || password === '') {
      throw new MissingCredentialError(
        `the password for upstream '${upstream.id}' is read from $${upstream.passwordEnv}, which is not set`,
      );
    }
    return { username: upstream.username, password };
  };
}
