import { Command, InvalidArgumentError, Option } from 'commander';
import { defaultConfigPath } from '../config/paths.ts';
import { checkCommand } from './check.ts';
import { routeCommand } from './route.ts';
import { serve } from './serve.ts';
import { userAdd, userList, userRemove } from './user.ts';

function milliseconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError('expected a whole number of milliseconds');
  return n;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

export function buildProgram(version: string): Command {
  const program = new Command('switchyard')
    .description('A local SOCKS4/4a/5 proxy with per-site routing and upstream chains.')
    .version(version)
    .showHelpAfterError('(run with --help for usage)');

  const configOption = () =>
    new Option('-c, --config <file>', 'config file').default(defaultConfigPath(), 'the per-user config file');

  program
    .command('serve')
    .description('run the SOCKS server in the foreground (logs to stderr; Ctrl-C stops it)')
    .addOption(configOption())
    .option('-l, --listen <host:port>', 'listen address (default 127.0.0.1:1080; port 0 picks a free port)')
    .option('--allow-open-proxy', 'allow listening beyond loopback without inbound users (dangerous)')
    .option('-q, --quiet', 'log only warnings and errors')
    .addOption(
      new Option('--log-level <level>', 'log level').choices(['debug', 'info', 'warn', 'error', 'silent']),
    )
    .addOption(new Option('--log-format <format>', 'log format').choices(['text', 'json']))
    .option(
      '--handshake-timeout <ms>',
      'close clients that have not finished the handshake in time',
      milliseconds,
    )
    .option('--idle-timeout <ms>', 'close tunnels idle this long (0 = never)', milliseconds)
    .option('--connect-timeout <ms>', 'give up connecting to a destination after this long', milliseconds)
    .option('--max-connections <n>', 'refuse clients beyond this many', positiveInt)
    .option(
      '--via <url>',
      'send all traffic through this upstream (repeat for a chain, in order): socks5://[user[:pass]@]host:port, ' +
        'socks4://, socks4a://, http://. A password here is visible to other local users in the process list.',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .action(serve);

  program
    .command('route <target>')
    .description('show which rule and route a host, host:port or URL takes, without connecting')
    .addOption(configOption())
    .action(routeCommand);

  program
    .command('check <name>')
    .description('connect through an upstream or route, hop by hop, and report each hop')
    .addOption(configOption())
    .requiredOption('-t, --target <host:port>', 'where the last hop connects to')
    .action(checkCommand);

  const user = program.command('user').description('manage inbound users (RFC 1929 username/password)');
  user
    .command('add <name>')
    .description('add or update a user; the password is read from standard input')
    .addOption(configOption())
    .option('--password-stdin', 'read the password from standard input')
    .action(userAdd);
  user.command('remove <name>').description('remove a user').addOption(configOption()).action(userRemove);
  user.command('list').description('list user names').addOption(configOption()).action(userList);
  return program;
}
