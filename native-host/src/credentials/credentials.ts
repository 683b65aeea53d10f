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
