import { Command, InvalidArgumentError, Option } from 'commander';
import { registerCredentialCommands } from './credential.ts';
import { registerInstallCommands } from './install-commands.ts';
import { defaultConfigPath } from '../config/paths.ts';
import { checkCommand } from './check.ts';
import { nativeHostCommand } from '../native-messaging/bridge.ts';
import { routeCommand } from './route.ts';
import { serve } from './serve.ts';
import { logCommand, reloadCommand, statusCommand, stopCommand } from './service-commands.ts';
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
    .addOption(new Option('--started-by-bridge', 'started by the native-messaging bridge').hideHelp())
    .addOption(
      new Option('--idle-exit-ms <ms>', 'with --started-by-bridge: exit after this long idle')
        .argParser(milliseconds)
        .hideHelp(),
    )
    .action((options: Parameters<typeof serve>[0]) => serve(options, version));

  program
    .command('native-host')
    .description('the native-messaging host the browser starts (not for use from a terminal)')
    .argument('[origin-or-manifest]', 'Chromium: the caller origin; Firefox: the host manifest path')
    .argument('[extension-id]', 'Firefox: the calling extension id')
    // Chromium on Windows adds --parent-window=N; nothing here may reject what a browser passes.
    .allowUnknownOption()
    .allowExcessArguments()
    .action(nativeHostCommand);

  const serviceOption = () =>
    new Option('-c, --config <file>', 'the config file of the service to talk to').default(
      defaultConfigPath(),
      'the per-user config file',
    );
  program
    .command('status')
    .description('show the running service: address, tunnels, traffic, uptime')
    .addOption(serviceOption())
    .option('--json', 'print the status as JSON')
    .action(statusCommand);
  program
    .command('log')
    .description("show the running service's live log of tunnels (rule, route, result)")
    .addOption(serviceOption())
    .option('-f, --follow', 'keep printing new events until interrupted')
    .option('-n, --limit <n>', 'how many recent events to show first (default 50)', positiveInt)
    .option('--json', 'one JSON object per event')
    .action(logCommand);
  program
    .command('reload')
    .description('make the running service re-read its config file')
    .addOption(serviceOption())
    .action(reloadCommand);
  program
    .command('stop')
    .description('stop the running service (open tunnels get the grace period)')
    .addOption(serviceOption())
    .action(stopCommand);

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
  registerCredentialCommands(program, configOption);
  registerInstallCommands(program, configOption);
  return program;
}
