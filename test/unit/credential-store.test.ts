import assert from 'node:assert/strict';
import {
  chmodSync,
  closeSync,
  existsSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Upstream } from '../../shared/config/schema.ts';
import { MissingCredentialError } from '../../native-host/src/credentials/credentials.ts';
import {
  CredentialFileError,
  FileCredentialStore,
  credentialsFilePath,
} from '../../native-host/src/credentials/file-store.ts';
import { explainKeyringError } from '../../native-host/src/credentials/keyring-store.ts';
import {
  type CredentialStore,
  credentialStorePreference,
  openCredentialStore,
  storeCredentialSource,
} from '../../native-host/src/credentials/store.ts';

const PASSWORD = 'unit-Known-Test-Pa55word!';

const temps: string[] = [];
after(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-cred-'));
  temps.push(dir);
  return dir;
}

function fileStore(configDir = join(tempDir(), 'nested', 'switchyard')): FileCredentialStore {
  return new FileCredentialStore(credentialsFilePath(configDir), 'no keyring in this test');
}

describe('file credential store', () => {
  test('set/get/has/delete round-trip', async () => {
    const store = fileStore();
    assert.equal(store.kind, 'file');
    assert.equal(await store.get('corp'), undefined);
    assert.equal(await store.has('corp'), false);
    await store.set('corp', PASSWORD);
    await store.set('other', 'two');
    assert.equal(await store.get('corp'), PASSWORD);
    assert.equal(await store.has('corp'), true);
    await store.set('corp', 'replaced');
    assert.equal(await store.get('corp'), 'replaced');
    assert.equal(await store.delete('corp'), true);
    assert.equal(await store.delete('corp'), false);
    assert.equal(await store.get('corp'), undefined);
    assert.equal(await store.get('other'), 'two');
  });

  test('a fresh store on the same file sees what another saved', async () => {
    const dir = join(tempDir(), 'switchyard');
    await fileStore(dir).set('corp', PASSWORD);
    assert.equal(await fileStore(dir).get('corp'), PASSWORD);
  });

  test('creates the file 0600 and a missing config dir 0700', async () => {
    const dir = join(tempDir(), 'a', 'switchyard');
    const store = fileStore(dir);
    await store.set('corp', PASSWORD);
    assert.equal(statSync(store.path).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
  });

  test('the file is plain JSON that says it is not encrypted', async () => {
    const store = fileStore();
    await store.set('corp', PASSWORD);
    const json = JSON.parse(readFileSync(store.path, 'utf8'));
    assert.equal(json.version, 1);
    assert.deepEqual(json.passwords, { corp: PASSWORD });
    assert.match(json.comment, /NOT encrypted/);
    assert.match(
      store.description,
      /^file .*credentials\.json \(mode 0600, not encrypted\): no keyring in this test$/,
    );
  });

  test('writes replace the file by rename and leave no temp files behind', async () => {
    const store = fileStore();
    await store.set('first', 'x');
    // Holding the first file open keeps its inode from being reused, so a different inode at
    // the path afterwards (and no links left to the held one) proves a rename, not a rewrite.
    const held = openSync(store.path, 'r');
    const inodeBefore = fstatSync(held).ino;
    // Concurrent writers in one process must not lose each other's updates.
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.set(`u${i}`, `p${i}`)));
    assert.notEqual(statSync(store.path).ino, inodeBefore, 'the file was rewritten in place');
    assert.equal(fstatSync(held).nlink, 0, 'the first file was replaced, not edited');
    closeSync(held);
    for (let i = 0; i < 20; i++) assert.equal(await store.get(`u${i}`), `p${i}`);
    assert.equal(await store.get('first'), 'x');
    const dir = join(store.path, '..');
    assert.deepEqual(readdirSync(dir), ['credentials.json']);
  });

  test('deleting the last password removes the file', async () => {
    const store = fileStore();
    await store.set('corp', PASSWORD);
    assert.equal(await store.delete('corp'), true);
    assert.equal(existsSync(store.path), false);
  });

  for (const mode of [0o644, 0o640, 0o604, 0o660]) {
    test(`refuses a file with mode 0${mode.toString(8)}, naming the chmod`, async () => {
      const store = fileStore();
      await store.set('corp', PASSWORD);
      chmodSync(store.path, mode);
      const refusal = (error: unknown) => {
        assert.ok(error instanceof CredentialFileError);
        assert.ok(error.message.includes(`chmod 600 '${store.path}'`), error.message);
        assert.ok(error.message.includes(`mode 0${mode.toString(8)}`), error.message);
        assert.ok(!error.message.includes(PASSWORD));
        return true;
      };
      await assert.rejects(store.get('corp'), refusal);
      await assert.rejects(store.has('corp'), refusal);
      // Saving would "fix" the mode by rename, hiding that the old passwords were exposed.
      await assert.rejects(store.set('corp', 'new'), refusal);
      assert.equal(statSync(store.path).mode & 0o777, mode);
      chmodSync(store.path, 0o600);
      assert.equal(await store.get('corp'), PASSWORD);
    });
  }

  test('a broken file is reported by path, never by its contents', async () => {
    const store = fileStore();
    await store.set('corp', PASSWORD);
    writeFileSync(store.path, `{"version":1,"passwords":{"corp":["${PASSWORD}"]}}`, { mode: 0o600 });
    await assert.rejects(store.get('corp'), (error: unknown) => {
      assert.ok(error instanceof CredentialFileError);
      assert.match(error.message, /the password of upstream 'corp' is not a string/);
      assert.ok(!error.message.includes(PASSWORD));
      return true;
    });
    writeFileSync(store.path, 'not json', { mode: 0o600 });
    await assert.rejects(store.get('corp'), /credentials\.json is not valid JSON/);
    writeFileSync(store.path, '{"version":2,"passwords":{}}', { mode: 0o600 });
    await assert.rejects(store.get('corp'), /has version 2; this Switchyard reads version 1/);
  });
});

describe('openCredentialStore', () => {
  test("prefer 'file' skips the keyring and says so", async () => {
    const dir = tempDir();
    const store = await openCredentialStore({ configDir: dir, prefer: 'file' });
    assert.equal(store.kind, 'file');
    assert.equal(
      store.description,
      `file ${join(dir, 'credentials.json')} (mode 0600, not encrypted): chosen instead of the OS keyring (SWITCHYARD_CREDENTIAL_STORE=file)`,
    );
  });

  test('SWITCHYARD_CREDENTIAL_STORE is checked', () => {
    assert.equal(credentialStorePreference({}), undefined);
    assert.equal(credentialStorePreference({ SWITCHYARD_CREDENTIAL_STORE: '' }), undefined);
    assert.equal(credentialStorePreference({ SWITCHYARD_CREDENTIAL_STORE: 'file' }), 'file');
    assert.equal(credentialStorePreference({ SWITCHYARD_CREDENTIAL_STORE: 'keyring' }), 'keyring');
    assert.throws(
      () => credentialStorePreference({ SWITCHYARD_CREDENTIAL_STORE: 'vault' }),
      /must be 'keyring' or 'file', not 'vault'/,
    );
  });
});

describe('keyring error messages', () => {
  // The binding's own messages, as seen on Debian 12 in each situation.
  const cases: [string, RegExp][] = [
    [
      'Platform failure: DBus error: Using X11 for dbus-daemon autolaunch was disabled at compile time, set your DBUS_SESSION_BUS_ADDRESS instead',
      /^no D-Bus session bus \(DBUS_SESSION_BUS_ADDRESS is not set/,
    ],
    [
      'Platform failure: DBus error: Failed to connect to socket /tmp/nonexist: No such file or directory',
      /^cannot connect to the D-Bus session bus \(Failed to connect to socket \/tmp\/nonexist/,
    ],
    [
      'Platform failure: DBus error: The name org.freedesktop.secrets was not provided by any .service files',
      /^no Secret Service on the session bus \(org\.freedesktop\.secrets not provided/,
    ],
    [
      "Couldn't access platform storage: Secret Service: no result found",
      /^the Secret Service has no default keyring/,
    ],
    [
      "Couldn't access platform storage: Secret Service: unlock prompt was dismissed",
      /^the keyring is locked/,
    ],
    [
      'Platform failure: DBus error: Did not receive a reply. Possible causes include: ...',
      /^the Secret Service did not answer/,
    ],
    ['something new', /^something new$/],
  ];
  for (const [message, expected] of cases) {
    test(message.slice(0, 70), () => assert.match(explainKeyringError(new Error(message)), expected));
  }
});

/** Records what was asked, so a test can tell that a lookup did not happen at all. */
function fakeStore(
  kind: 'keyring' | 'file',
  passwords: Record<string, string>,
): CredentialStore & { asked: string[] } {
  const asked: string[] = [];
  return {
    kind,
    description: `${kind} for tests`,
    asked,
    async get(id) {
      asked.push(id);
      return passwords[id];
    },
    async set() {},
    async delete() {
      return false;
    },
    async has(id) {
      return id in passwords;
    },
  };
}

function upstream(over: Partial<Upstream>): Upstream {
  return { id: 'corp', type: 'socks5', host: '127.0.0.1', port: 1080, ...over };
}

describe('storeCredentialSource', () => {
  test('the username from the config, the password from the store', async () => {
    const store = fakeStore('keyring', { corp: PASSWORD });
    const source = storeCredentialSource(store);
    assert.deepEqual(await source(upstream({ username: 'alice' })), {
      username: 'alice',
      password: PASSWORD,
    });
    assert.deepEqual(await source(upstream({ type: 'http', username: 'alice' })), {
      username: 'alice',
      password: PASSWORD,
    });
  });

  test('no username: no credentials, and the store is not asked', async () => {
    const store = fakeStore('keyring', { corp: PASSWORD });
    assert.equal(await storeCredentialSource(store)(upstream({})), undefined);
    assert.deepEqual(store.asked, []);
  });

  test('SOCKS4 sends a user id and needs no password, so the store is not asked', async () => {
    const store = fakeStore('keyring', {});
    const source = storeCredentialSource(store);
    for (const type of ['socks4', 'socks4a'] as const) {
      assert.deepEqual(await source(upstream({ type, username: 'bob' })), { username: 'bob', password: '' });
    }
    assert.deepEqual(store.asked, []);
  });

  for (const [kind, where] of [
    ['keyring', 'the OS keyring'],
    ['file', 'the credentials file'],
  ] as const) {
    for (const type of ['socks5', 'http'] as const) {
      test(`${type}, ${kind}: a missing password names the command that saves it`, async () => {
        const source = storeCredentialSource(fakeStore(kind, {}));
        await assert.rejects(source(upstream({ type, username: 'alice' })), (error: unknown) => {
          assert.ok(error instanceof MissingCredentialError);
          assert.equal(
            error.message,
            `no password is saved for upstream 'corp' (user 'alice') in ${where}; ` +
              'save it with: switchyard credential set corp --password-stdin',
          );
          return true;
        });
      });
    }
  }

  test('a store that fails is not mistaken for a missing password', async () => {
    const broken: CredentialStore = {
      ...fakeStore('keyring', {}),
      get: () => Promise.reject(new Error('the Secret Service did not answer')),
    };
    await assert.rejects(storeCredentialSource(broken)(upstream({ username: 'alice' })), (error: unknown) => {
      assert.ok(!(error instanceof MissingCredentialError));
      return true;
    });
  });

  test('works over the real file store', async () => {
    const store = fileStore();
    await store.set('corp', PASSWORD);
    assert.deepEqual(await storeCredentialSource(store)(upstream({ username: 'alice' })), {
      username: 'alice',
      password: PASSWORD,
    });
  });
});
