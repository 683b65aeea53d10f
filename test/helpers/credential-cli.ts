/**
 * `switchyard credential ...` without the rest of the program, so the tests exercise the real
 * commands (stdin, config checks, exit codes) as a child process, the way a user runs them.
 *   node --import tsx test/helpers/credential-cli.ts credential set corp -c FILE --password-stdin
 */
import { Command, Option } from 'commander';
import { UsageError } from '../../native-host/src/cli/errors.ts';
import { registerCredentialCommands } from '../../native-host/src/cli/credential.ts';
import { defaultConfigPath } from '../../native-host/src/config/paths.ts';
import { ConfigError } from '../../native-host/src/config/store.ts';

const program = new Command('switchyard');
registerCredentialCommands(program, () =>
  new Option('-c, --config <file>', 'config file').default(defaultConfigPath(), 'the per-user config file'),
);
try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof UsageError || error instanceof ConfigError) {
    process.stderr.write(`switchyard: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
}
