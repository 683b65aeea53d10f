// The executable's `#!` line is written by scripts/build-host.mjs (with the service's V8 options).
import { ConfigError } from './config/store.ts';
import { UsageError } from './cli/errors.ts';
import { buildProgram } from './cli/program.ts';

declare const SWITCHYARD_VERSION: string | undefined;
const version = typeof SWITCHYARD_VERSION === 'string' ? SWITCHYARD_VERSION : '0.0.0-dev';

try {
  await buildProgram(version).parseAsync(process.argv);
} catch (error) {
  if (error instanceof UsageError || error instanceof ConfigError) {
    process.stderr.write(`switchyard: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(
    `switchyard: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
}
