import { hashPassword } from '../auth/password-hash.ts';
import { loadConfig, saveConfig } from '../config/store.ts';
import { UsageError } from './errors.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function userAdd(
  name: string,
  options: { config: string; passwordStdin?: boolean },
): Promise<void> {
  if (!options.passwordStdin) {
    throw new UsageError(
      'give the password on standard input with --password-stdin (e.g. `printf %s "$PW" | switchyard user add NAME --password-stdin`); passwords on the command line are visible to other users',
    );
  }
  if (Buffer.byteLength(name) > 255 || name.length === 0)
    throw new UsageError('a user name must be 1 to 255 bytes');
  // One trailing newline is how `echo` and here-strings end; it is not part of the password.
  const password = (await readStdin()).replace(/\r?\n$/, '');
  if (password.length === 0) throw new UsageError('the password read from standard input is empty');
  if (Buffer.byteLength(password) > 255) throw new UsageError('SOCKS5 passwords are at most 255 bytes');
  const { config } = await loadConfig(options.config);
  const passwordHash = await hashPassword(password);
  const users = config.users.filter((u) => u.name !== name);
  const replaced = users.length !== config.users.length;
  await saveConfig(options.config, { ...config, users: [...users, { name, passwordHash }] });
  process.stdout.write(`${replaced ? 'updated' : 'added'} user ${name} in ${options.config}\n`);
}

export async function userRemove(name: string, options: { config: string }): Promise<void> {
  const { config, exists } = await loadConfig(options.config);
  const users = config.users.filter((u) => u.name !== name);
  if (!exists || users.length === config.users.length) {
    throw new UsageError(`no user named ${name} in ${options.config} (see: switchyard user list)`);
  }
  await saveConfig(options.config, { ...config, users });
  process.stdout.write(`removed user ${name} from ${options.config}\n`);
}

export async function userList(options: { config: string }): Promise<void> {
  const { config } = await loadConfig(options.config);
  for (const user of config.users) process.stdout.write(`${user.name}\n`);
}
