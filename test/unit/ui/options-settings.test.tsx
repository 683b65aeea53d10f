/** @jsxRuntime automatic @jsxImportSource preact */
import './setup.ts';
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/preact';
import { type Config, validateConfig } from '../../../shared/config/schema.ts';
import type { TunnelEvent } from '../../../shared/messages/tunnel-event.ts';
import { validateRules } from '../../../shared/rules/validate.ts';
import { Options, type TabId } from '../../../extension/options/Options.tsx';
import { FakeBackground, makeConfig, makeRules, makeState, UPSTREAMS } from './fake-client.ts';

afterEach(cleanup);

function renderOptions(
  fake: FakeBackground,
  tab: TabId,
  requestPermission?: (p: 'privacy') => Promise<boolean>,
) {
  render(<Options client={fake} initialTab={tab} requestPermission={requestPermission} />);
}

describe('options: settings', () => {
  it('changing the listen port sends config.patch with listen, and nothing for a bad port', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'settings');
    const input = await screen.findByLabelText<HTMLInputElement>('Listen port');
    assert.equal(input.value, '1080');
    const save = screen.getByRole<HTMLButtonElement>('button', { name: 'Save' });
    assert.equal(save.disabled, true, 'nothing to save yet');
    fireEvent.input(input, { target: { value: '70000' } });
    await waitFor(() => assert.equal(save.disabled, false));
    fireEvent.click(save);
    await screen.findByText('The port must be a whole number from 1 to 65535.');
    assert.deepEqual(fake.requests('host.request'), []);

    fireEvent.input(input, { target: { value: '1090' } });
    fireEvent.click(save);
    await screen.findByText('Saved the listen port.');
    const listen = fake.state.config?.listen;
    assert.deepEqual(fake.hostRequests('config.patch'), [
      { patch: { listen: { host: '127.0.0.1', port: 1090, socks4: true, socks5: true } } },
    ]);
    assert.equal(listen?.port, 1090);
  });

  it('fail mode and toolbar click send settings.set with just that setting', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'settings');
    const fallBack = await screen.findByRole<HTMLInputElement>('radio', {
      name: /^Fall back: those sites go direct/,
    });
    assert.equal(screen.getByRole<HTMLInputElement>('radio', { name: /^Fail closed/ }).checked, true);
    fireEvent.click(fallBack);
    await waitFor(() => assert.equal(fake.requests('settings.set').length, 1));
    fireEvent.click(screen.getByRole('radio', { name: /^Turns Switchyard on or off/ }));
    await waitFor(() => assert.equal(fake.requests('settings.set').length, 2));
    assert.deepEqual(fake.requests('settings.set'), [
      { type: 'settings.set', settings: { failMode: 'fallback-direct' } },
      { type: 'settings.set', settings: { toolbarClick: 'toggle' } },
    ]);
    await waitFor(() => assert.equal(fallBack.checked, true));
    assert.deepEqual(fake.requests('host.request'), []);
  });

  it('WebRTC protection asks for the privacy permission first, then sends settings.set', async () => {
    const asked: string[] = [];
    const fake = new FakeBackground();
    renderOptions(fake, 'settings', async (p) => {
      asked.push(p);
      return true;
    });
    fireEvent.click(await screen.findByRole('checkbox', { name: /^Protect against WebRTC leaks/ }));
    await waitFor(() => assert.equal(fake.requests('settings.set').length, 1));
    assert.deepEqual(asked, ['privacy']);
    assert.deepEqual(fake.requests('settings.set'), [
      { type: 'settings.set', settings: { webrtcProtection: true } },
    ]);
  });

  it('WebRTC protection stays off when the permission is refused', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'settings', async () => false);
    fireEvent.click(await screen.findByRole('checkbox', { name: /^Protect against WebRTC leaks/ }));
    await screen.findByText(
      'WebRTC protection needs the "privacy" permission, which was not granted: it stays off.',
    );
    assert.deepEqual(fake.requests('settings.set'), []);
  });
});

function importText(text: string) {
  fireEvent.input(screen.getByLabelText('Or paste the JSON'), { target: { value: text } });
  fireEvent.click(screen.getByRole('button', { name: 'Check file' }));
}

function issueRows(): { path: string; message: string }[] {
  return Array.from(document.querySelectorAll('.issues li'), (li) => ({
    path: li.querySelector('.issue-path')?.textContent ?? '',
    message: li.querySelector('.issue-message')?.textContent ?? '',
  }));
}

function hasKey(value: unknown, pattern: RegExp): boolean {
  if (Array.isArray(value)) return value.some((v) => hasKey(v, pattern));
  if (typeof value !== 'object' || value === null) return false;
  return Object.entries(value).some(([k, v]) => pattern.test(k) || hasKey(v, pattern));
}

describe('options: import and export', () => {
  it('invalid JSON is reported and nothing is sent', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'import-export');
    await screen.findByLabelText('Or paste the JSON');
    importText('{"version": 1,');
    await waitFor(() => assert.equal(issueRows().length, 1));
    assert.equal(issueRows()[0]?.path, '(file)');
    assert.match(issueRows()[0]?.message ?? '', /^not valid JSON: /);
    assert.equal(screen.queryByRole('button', { name: 'Replace configuration' }), null);
    assert.deepEqual(fake.requests('host.request'), []);
  });

  it('schema errors are listed by field path, passwords are refused, and nothing is sent', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'import-export');
    await screen.findByLabelText('Or paste the JSON');
    const file = {
      version: 1,
      listen: { port: 70000 },
      upstreams: [{ id: 'x', type: 'socks9', host: 'h', port: 1080 }],
      routes: [{ id: 'r', hops: ['nope'] }],
      rules: [
        {
          id: 'a',
          enabled: true,
          match: { hosts: [{ type: 'domain', value: 'example.com' }] },
          target: { kind: 'direct' },
        },
      ],
    };
    const schema = validateConfig({ ...file, users: [] });
    assert.equal(schema.ok, false);
    const rules = validateRules(file.rules);
    importText(JSON.stringify(file));
    await waitFor(() => assert.ok(issueRows().length > 0));
    // The schema's own messages, then the rule validator's (the schema stops before rules).
    assert.deepEqual(issueRows(), [...(schema.ok ? [] : schema.issues), ...rules]);
    assert.deepEqual(
      issueRows().map((i) => i.path),
      ['listen.port', 'upstreams[0].type', 'rules[0].match.hosts[0]'],
    );

    importText(
      JSON.stringify({
        version: 1,
        upstreams: [{ id: 'x', type: 'socks5', host: 'h', port: 1, password: 'pw' }],
      }),
    );
    await waitFor(() => assert.equal(issueRows()[0]?.path, 'upstreams[0].password'));
    assert.deepEqual(issueRows(), [
      {
        path: 'upstreams[0].password',
        message:
          'passwords are never imported: remove this field, then set the password in Upstreams (it goes to the credential store)',
      },
    ]);
    assert.equal(screen.queryByRole('button', { name: 'Replace configuration' }), null);
    assert.deepEqual(fake.requests('host.request'), []);
  });

  it('a valid import is shown first, and sends config.replace only when confirmed', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'import-export');
    await screen.findByLabelText('Or paste the JSON');
    const file = {
      version: 1,
      upstreams: [UPSTREAMS[0]],
      routes: [{ id: 'corp', hops: ['gw'] }],
      rules: makeRules(2).map((r) => ({ ...r, target: { kind: 'direct' } })),
    };
    importText(JSON.stringify(file));
    await screen.findByText(/^Valid: 1 upstream, 1 route, 2 rules\./);
    assert.deepEqual(fake.requests('host.request'), []);
    fireEvent.click(screen.getByRole('button', { name: 'Replace configuration' }));
    await screen.findByText('Imported: 1 upstream, 1 route, 2 rules.');
    const sent = fake.hostRequests('config.replace');
    assert.equal(sent.length, 1);
    const config = sent[0]?.config as Config;
    assert.deepEqual(config.upstreams, [UPSTREAMS[0]]);
    assert.deepEqual(config.routes, [{ id: 'corp', hops: ['gw'], onFirstHopDown: 'fail' }]);
    assert.deepEqual(
      config.rules.map((r) => r.id),
      ['r0', 'r1'],
    );
  });

  it('export produces the configuration as JSON with no password fields', async () => {
    const base = makeConfig();
    const config: Config = {
      ...base,
      users: [{ name: 'bob', passwordHash: 'scrypt$16384$8$1$salt$hash' }],
    };
    const fake = new FakeBackground(makeState({ config }));
    renderOptions(fake, 'import-export');
    fireEvent.click(await screen.findByRole('button', { name: 'Export configuration' }));
    const text = screen.getByLabelText<HTMLTextAreaElement>('Exported configuration').value;
    const exported: unknown = JSON.parse(text);
    assert.equal(hasKey(exported, /password/i), false);
    assert.ok(!text.includes('scrypt$'));
    const { users: _users, ...rest } = config;
    assert.deepEqual(exported, rest);

    // And it imports back into the same configuration: what it leaves out is kept from this host.
    importText(text);
    await screen.findByText(/^Valid: 2 upstreams, 2 routes, 3 rules\./);
    fireEvent.click(screen.getByRole('button', { name: 'Replace configuration' }));
    await waitFor(() => assert.equal(fake.hostRequests('config.replace').length, 1));
    assert.deepEqual(fake.hostRequests('config.replace')[0]?.config, config);
  });
});

function event(partial: Partial<TunnelEvent> & Pick<TunnelEvent, 'seq' | 'kind' | 'host'>): TunnelEvent {
  return {
    time: new Date(2025, 0, 1, 12, 0, partial.seq).getTime(),
    id: partial.seq,
    client: '127.0.0.1:50000',
    proto: 'socks5',
    cmd: 'connect',
    dest: `${partial.host}:443`,
    ...partial,
  };
}

function logRows(): string[][] {
  const list = screen.queryByRole('list', { name: 'Log events, newest first' });
  if (!list) return [];
  return Array.from(list.querySelectorAll('.log-row'), (row) => [
    row.querySelector('.log-kind')?.textContent ?? '',
    row.querySelector('.log-dest')?.textContent ?? '',
    row.querySelector('.log-rule')?.textContent ?? '',
    row.querySelector('.log-via')?.textContent ?? '',
    row.querySelector('.log-result')?.textContent ?? '',
  ]);
}

describe('options: live log', () => {
  const LOG = [
    event({
      seq: 1,
      kind: 'opened',
      host: 'intranet.corp',
      rule: 'Corp sites',
      via: 'route Corp (Office gateway)',
    }),
    event({
      seq: 2,
      kind: 'closed',
      host: 'news.example',
      rule: 'default',
      result: 'done',
      up: 100,
      down: 2048,
      ms: 900,
    }),
    event({
      seq: 3,
      kind: 'failed',
      host: 'intranet.corp',
      rule: 'Corp sites',
      via: 'route Corp (Office gateway)',
      result: 'rep 5 (connection refused)',
      error: 'hop 1 (Office gateway): connect ECONNREFUSED',
      hop: 1,
    }),
  ];

  it('events render newest first with their rule and route', async () => {
    const fake = new FakeBackground();
    fake.log = LOG;
    renderOptions(fake, 'log');
    await waitFor(() => assert.equal(logRows().length, 3));
    assert.deepEqual(logRows(), [
      [
        'failed',
        'intranet.corp:443',
        'Corp sites',
        'route Corp (Office gateway)',
        'hop 1 (Office gateway): connect ECONNREFUSED',
      ],
      ['closed', 'news.example:443', 'default', 'direct', 'done'],
      ['opened', 'intranet.corp:443', 'Corp sites', 'route Corp (Office gateway)', ''],
    ]);
    assert.deepEqual(fake.requests('log.recent'), [{ type: 'log.recent', limit: 1000 }]);
  });

  it('filtering by site narrows them; pushed events join at the top', async () => {
    const fake = new FakeBackground();
    fake.log = LOG;
    renderOptions(fake, 'log');
    await waitFor(() => assert.equal(logRows().length, 3));
    fireEvent.input(screen.getByLabelText('Site'), { target: { value: 'intranet' } });
    await waitFor(() => assert.equal(logRows().length, 2));
    assert.deepEqual(
      logRows().map((r) => r[1]),
      ['intranet.corp:443', 'intranet.corp:443'],
    );
    screen.getByText('2 of 3 events');

    fake.push({
      type: 'log',
      events: [event({ seq: 4, kind: 'opened', host: 'intranet.corp', rule: 'Corp sites', via: 'direct' })],
    });
    await waitFor(() => assert.equal(logRows().length, 3));
    assert.equal(logRows()[0]?.[1], 'intranet.corp:443');
    screen.getByText('3 of 4 events');

    fireEvent.change(screen.getByLabelText('Show'), { target: { value: 'problems' } });
    await waitFor(() => assert.equal(logRows().length, 1));
    assert.equal(logRows()[0]?.[0], 'failed');
  });
});
