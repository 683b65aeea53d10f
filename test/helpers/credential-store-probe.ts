/**
 * Opens the credential store the way the host does and reports on it as one JSON line, for
 * tests that must run it inside a D-Bus session of their own. A password is reported only as
 * its SHA-256, so that the test can check the password itself appears in no output at all.
 *   node --import tsx test/helpers/credential-store-probe.ts CONFIG_DIR open|get ID|has ID|respawn ID
 * Environment: SWITCHYARD_CREDENTIAL_STORE as for the host; KEYRING_TIMEOUT_MS bounds the probe.
 */
import { createHash } from 'node:crypto';
import { probeKeyring } from '../../native-host/src/credentials/keyring-store.ts';
import { credentialStorePreference, openCredentialStore } from '../../native-host/src/credentials/store.ts';

const [configDir, command, id] = process.argv.slice(2);
const sha256 = (password: string | undefined) =>
  password === undefined ? null : createHash('sha256').update(password).digest('hex');

if (command === 'respawn' && id) {
  // The keyring helper process exits when idle; the store must start a new one transparently.
  const probe = await probeKeyring({ timeoutMs: 10_000, helperIdleMs: 100 });
  if (!probe.ok) throw new Error(probe.reason);
  const store = probe.store();
  const first = sha256(await store.get(id));
  await new Promise((resolve) => setTimeout(resolve, 500));
  process.stdout.write(`${JSON.stringify({ first, second: sha256(await store.get(id)) })}\n`);
  process.exit(0);
}

if (!configDir || !command) throw new Error('usage: credential-store-probe.ts CONFIG_DIR open|get ID|has ID');
const prefer = credentialStorePreference();
const started = Date.now();
// A test of the probe's time bound sets a short one.
const keyringTimeoutMs = Number(process.env.KEYRING_TIMEOUT_MS) || undefined;
const store = await openCredentialStore({
  configDir,
  ...(prefer ? { prefer } : {}),
  ...(keyringTimeoutMs ? { keyringTimeoutMs } : {}),
});
const report: Record<string, unknown> = {
  kind: store.kind,
  description: store.description,
  openMs: Date.now() - started,
};
if (command === 'get' && id) {
  const password = await store.get(id);
  report.sha256 = sha256(password);
} else if (command === 'has' && id) {
  report.has = await store.has(id);
}
process.stdout.write(`${JSON.stringify(report)}\n`);
