/**
 * `switchyard install | uninstall | doctor`: registering the native-messaging host with the
 * browsers, removing it again, and checking every link between the browser and the proxy.
 */
import { existsSync } from 'node:fs';
import type { Command, Option } from 'commander';
import { NATIVE_HOST_NAME } from '../../../shared/messages/native-host.ts';
import {
  BROWSER_IDS,
  type BrowserId,
  type PlatformContext,
  RegExeRegistry,
  type Registry,
  UnsupportedTargetError,
  isBrowserId,
  platformContext,
  regExePath,
} from '../install/browsers.ts';
import { doctorExitCode, formatChecks, runDoctor } from '../install/doctor.ts';
import { type BrowserChoice, install, targetLabel, uninstall } from '../install/install.ts';
import { defaultHostScript } from '../install/launcher.ts';
import { ExtensionIdError, extensionIds } from '../install/manifest.ts';
import { UsageError } from './errors.ts';

const BROWSER_HELP = `${BROWSER_IDS.join(', ')} or all (repeat or separate by commas)`;

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((v) => v.trim())].filter((v) => v !== '');
}

function browserChoice(values: readonly string[] | undefined): BrowserChoice | undefined {
  if (values === undefined || values.length === 0) return undefined;
  if (values.includes('all')) return 'all';
  const ids: BrowserId[] = [];
  for (const value of values) {
    if (!isBrowserId(value)) throw new UsageError(`unknown browser '${value}'; choose from ${BROWSER_HELP}`);
    if (!ids.includes(value)) ids.push(value);
  }
  return ids;
}

function registryFor(ctx: PlatformContext): Registry | undefined {
  return ctx.platform === 'win32' ? new RegExeRegistry(regExePath(ctx)) : undefined;
}

/** Install-side errors a person can act on become usage errors: printed plainly, exit 2. */
async function plainly<T>(task: () => Promise<T>): Promise<T> {
  try {
    return await task();
  } catch (error) {
    if (error instanceof UnsupportedTargetError || error instanceof ExtensionIdError) {
      throw new UsageError(error.message);
    }
    throw error;
  }
}

interface InstallOptions {
  browser?: string[];
  extensionId?: string[];
  userDataDir?: string;
  quiet?: boolean;
}

async function installCommand(options: InstallOptions): Promise<void> {
  await plainly(async () => {
    const ctx = platformContext();
    const ids = extensionIds(options.extensionId);
    const hostScript = defaultHostScript();
    if (!existsSync(hostScript)) {
      throw new UsageError(
        `the host is not built (${hostScript} is missing); build it with: npm run build:host`,
      );
    }
    const log = options.quiet ? () => undefined : (line: string) => void process.stdout.write(`${line}\n`);
    const registry = registryFor(ctx);
    const result = await install(
      {
        ctx,
        browsers: browserChoice(options.browser) ?? 'all',
        ids,
        ...(options.userDataDir !== undefined ? { userDataDir: options.userDataDir } : {}),
        launcher: { node: process.execPath, hostScript },
      },
      { log, ...(registry !== undefined ? { registry } : {}) },
    );
    const { plan } = result;
    if (plan.manifests.length === 0) {
      process.stdout.write(
        'switchyard install: found no browser here (none has a per-user directory yet), so nothing was written.\n' +
          `  Name one to install for it anyway: switchyard install --browser ${BROWSER_IDS.join('|')}\n`,
      );
      return;
    }
    const names = plan.manifests.map((m) => targetLabel(m.target)).join(', ');
    const allowed = [
      ...(plan.manifests.some((m) => m.target.browser.family === 'chromium') ? ids.chromium : []),
      ...(plan.manifests.some((m) => m.target.browser.family === 'firefox') ? ids.gecko : []),
    ];
    process.stdout.write(
      `switchyard: native-messaging host ${NATIVE_HOST_NAME} installed for ${names} ` +
        `(extension ${allowed.join(', ')})\n`,
    );
    if (plan.notFound.length > 0 && !options.quiet) {
      process.stdout.write(
        `  not found here, skipped: ${plan.notFound.map((t) => t.browser.label).join(', ')} ` +
          '(name one with --browser to install for it anyway)\n',
      );
    }
  });
}

interface UninstallOptions {
  browser?: string[];
  userDataDir?: string;
  quiet?: boolean;
}

async function uninstallCommand(options: UninstallOptions): Promise<void> {
  await plainly(async () => {
    const ctx = platformContext();
    const choice = browserChoice(options.browser);
    const log = options.quiet ? () => undefined : (line: string) => void process.stdout.write(`${line}\n`);
    const registry = registryFor(ctx);
    const result = await uninstall(
      {
        ctx,
        ...(choice !== undefined && choice !== 'all' ? { browsers: choice } : {}),
        ...(options.userDataDir !== undefined ? { userDataDir: options.userDataDir } : {}),
      },
      { log, ...(registry !== undefined ? { registry } : {}) },
    );
    if (result.removed.length === 0) process.stdout.write('switchyard: nothing installed to remove\n');
    else if (options.quiet) process.stdout.write(`switchyard: removed ${result.removed.length} files\n`);
  });
}

interface DoctorOptions {
  config: string;
  browser?: string[];
  extensionId?: string[];
  userDataDir?: string;
  json?: boolean;
}

async function doctorCommand(options: DoctorOptions): Promise<void> {
  await plainly(async () => {
    const ctx = platformContext();
    const registry = registryFor(ctx);
    const checks = await runDoctor({
      ctx,
      config: options.config,
      browsers: browserChoice(options.browser) ?? 'all',
      ids: extensionIds(options.extensionId),
      idArgs: options.extensionId ?? [],
      ...(options.userDataDir !== undefined ? { userDataDir: options.userDataDir } : {}),
      ...(registry !== undefined ? { registry } : {}),
    });
    process.stdout.write(
      options.json
        ? `${JSON.stringify({ ok: doctorExitCode(checks) === 0, checks }, null, 2)}\n`
        : formatChecks(checks),
    );
    process.exitCode = doctorExitCode(checks);
  });
}

export function registerInstallCommands(program: Command, configOption: () => Option): void {
  program
    .command('install')
    .description('register the native-messaging host with the browsers (per user; no root needed)')
    .option('-b, --browser <name>', `which browsers: ${BROWSER_HELP} (default: all found here)`, collect)
    .option(
      '--extension-id <id>',
      'the extension allowed to connect (default: the development build; repeatable)',
      collect,
    )
    .option(
      '--user-data-dir <dir>',
      'a Chromium profile started with --user-data-dir: write the manifest there',
    )
    .option('-q, --quiet', 'print only a one-line summary')
    .action(installCommand);

  program
    .command('uninstall')
    .description('remove what install wrote (and nothing else)')
    .option('-b, --browser <name>', `only these browsers: ${BROWSER_HELP}`, collect)
    .option('--user-data-dir <dir>', 'only the manifest in this Chromium profile')
    .option('-q, --quiet', 'print only a one-line summary')
    .action(uninstallCommand);

  program
    .command('doctor')
    .description('check every link between the browser and the proxy, and say how to fix what is broken')
    .addOption(configOption())
    .option('-b, --browser <name>', `which browsers: ${BROWSER_HELP} (default: all found here)`, collect)
    .option(
      '--extension-id <id>',
      'the extension that must be allowed (default: the development build)',
      collect,
    )
    .option('--user-data-dir <dir>', 'check the manifest of this Chromium profile')
    .option('--json', 'print the checks as JSON')
    .action(doctorCommand);
}
