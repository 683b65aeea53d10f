/**
 * `switchyard credential ...`: upstream passwords in the OS keyring (or the fallback file).
 * A password only ever goes in, on standard input; nothing here prints one back.
 */
import { dirname } from 'node:path';
import type { Command, Option } from 'commander';
import { loadConfig } from '../config/store.ts';
import { CredentialFileError } from '../credentials/file-store.ts';
import { KeyringError } from '../credentials/keyring-store.ts';
import {
  type CredentialStore,
  type OpenCredentialStoreOptions,
  credentialStorePreference,
  openCredentialStore,
} from '../credentials/store.ts';
import { UsageError } from './errors.ts';

interface ConfigOptions {
  readonly config: string;
}

/**
 * The CLI and the service must agree on the store, so both derive it from the config file (and
 * SWITCHYARD_CREDENTIAL_STORE); a bad value of that variable is a usage error.
 */
export function credentialStoreOptions(configFile: string): OpenCredentialStoreOptions {
  let prefer: ReturnType<typeof credentialStorePreference>;
  try {
    prefer = credentialStorePreference();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return { configDir: dirname(configFile), ...(prefer ? { prefer } : {}) };
}

function openStore(configFile: string): Promise<CredentialStore> {
  return openCredentialStore(credentialStoreOptions(configFile));
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) {
    process.stderr.write('type the password (it is shown as you type), then press Enter and Ctrl-D\n');
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function credentialSet(
  upstreamId: string,
  options: ConfigOptions & { passwordStdin?: boolean },
): Promise<void> {
  if (!options.passwordStdin) {
    throw new UsageError(
      `give the password on standard input with --password-stdin (e.g. \`printf %s "$PW" | switchyard credential set ${upstreamId} --password-stdin\`); passwords on the command line are visible to other users`,
    );
  }
  const { config } = await loadConfig(options.config);
  const upstream = config.upstreams.find((u) => u.id === upstreamId);
  if (!upstream) {
    const known = config.upstreams.map((u) => u.id).join(', ');
    throw new UsageError(
      `no upstream '${upstreamId}' in ${options.config} (${known ? `upstreams: ${known}` : 'it has no upstreams'})`,
    );
  }
  if (upstream.type === 'socks4' || upstream.type === 'socks4a') {
    throw new UsageError(
      `upstream '${upstreamId}' is ${upstream.type}, which sends a user id but never a password`,
    );
  }
  // One trailing newline is how `echo` and here-strings end; it is not part of the password.
  const password = (await readStdin()).replace(/\r?\n$/, '');
  if (password.length === 0) throw new UsageError('the password read from standard input is empty');
  if (upstream.type === 'socks5' && Buffer.byteLength(password) > 255) {
    throw new UsageError('SOCKS5 passwords are at most 255 bytes (RFC 1929)');
  }
  const store = await openStore(options.config);
  await store.set(upstreamId, password);
  process.stdout.write(`saved the password of upstream ${upstreamId} in ${store.description}\n`);
  if (upstream.username === undefined) {
    process.stderr.write(
      `note: upstream ${upstreamId} has no username in ${options.config}, so the password is not used until it gets one\n`,
    );
  }
}

/** Works for ids no longer in the config too: that is how a stale password gets cleaned up. */
export async function credentialDelete(upstreamId: string, options: ConfigOptions): Promise<void> {
  const store = await openStore(options.config);
  if (!(await store.delete(upstreamId))) {
    throw new UsageError(`no password is saved for upstream '${upstreamId}' in ${store.description}`);
  }
  process.stdout.write(`deleted the password of upstream ${upstreamId}\n`);
}

export async function credentialList(options: ConfigOptions): Promise<void> {
  const { config } = await loadConfig(options.config);
  const store = await openStore(options.config);
  for (const upstream of config.upstreams) {
    let state: string;
    if (upstream.type === 'socks4' || upstream.type === 'socks4a') state = `not needed (${upstream.type})`;
    else if (upstream.username === undefined) state = 'not needed (no username)';
    else state = (await store.has(upstream.id)) ? 'saved' : 'not saved';
    process.stdout.write(`${upstream.id}\t${state}\n`);
  }
}

export async function credentialWhere(options: ConfigOptions): Promise<void> {
  const store = await openStore(options.config);
  process.stdout.write(`${store.description}\n`);
}

/** A store's error explains itself (and names the fix); a stack trace would only bury it. */
function plainErrors<A extends unknown[]>(
  action: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await action(...args);
    } catch (error) {
      if (error instanceof KeyringError || error instanceof CredentialFileError) {
        throw new UsageError(error.message, { cause: error });
      }
      throw error;
    }
  };
}

export function registerCredentialCommands(program: Command, configOption: () => Option): void {
  const credential = program
    .command('credential')
    .description('manage upstream passwords (kept in the OS keyring, or a 0600 file where there is none)');
  credential
    .command('set <upstreamId>')
    .description('save the password of an upstream; it is read from standard input')
    .addOption(configOption())
    .option('--password-stdin', 'read the password from standard input')
    .action(plainErrors(credentialSet));
  credential
    .command('delete <upstreamId>')
    .description('delete the saved password of an upstream')
    .addOption(configOption())
    .action(plainErrors(credentialDelete));
  credential
    .command('list')
    .description("list the config's upstreams and whether a password is saved (never the password)")
    .addOption(configOption())
    .action(plainErrors(credentialList));
  credential
    .command('where')
    .description('say where passwords are kept, and why there if it is the fallback file')
    .addOption(configOption())
    .action(plainErrors(credentialWhere));
}
