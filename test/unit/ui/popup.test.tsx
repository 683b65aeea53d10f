/** @jsxRuntime automatic @jsxImportSource preact */
import { stubClipboard, tabbables } from './setup.ts';
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/preact';
import type { RouteResult } from '../../../shared/messages/protocol.ts';
import type { TunnelEvent } from '../../../shared/messages/tunnel-event.ts';
import { Popup } from '../../../extension/popup/Popup.tsx';
import { activeTabUrl } from '../../../extension/popup/tab-url.ts';
import { adviceFor } from '../../../extension/ui/advice.ts';
import { FakeBackground, makeState } from './fake-client.ts';

afterEach(cleanup);

const SITE = 'https://www.example.com/some/page';

function renderPopup(fake: FakeBackground, url: string | undefined = SITE) {
  const opened: (string | undefined)[] = [];
  render(<Popup client={fake} tabUrl={Promise.resolve(url)} openOptions={(tab) => opened.push(tab)} />);
  return { opened };
}

async function loadedToggle(): Promise<HTMLButtonElement> {
  const toggle = await screen.findByRole<HTMLButtonElement>('switch');
  await waitFor(() => assert.equal(toggle.disabled, false));
  return toggle;
}

const CHAIN_ROUTE: RouteResult = {
  destination: 'www.example.com:443',
  rule: 'Example sites',
  ruleId: 'r1',
  target: { kind: 'route', routeId: 'chain' },
  route: { id: 'chain', name: 'Chain', label: 'route Chain (Office gateway > Abroad)' },
  hops: [
    { id: 'gw', name: 'Office gateway', type: 'socks5', host: 'gw.corp.example', port: 1080, username: 'me' },
    { id: 'abroad', name: 'Abroad', type: 'http', host: 'proxy.abroad.example', port: 3128 },
  ],
  onFirstHopDown: 'direct',
  description: 'www.example.com:443 -> rule Example sites -> route Chain (Office gateway > Abroad)',
};

describe('popup', () => {
  it('the toggle is the first control Tab reaches, and flipping it sends toggle', async () => {
    const fake = new FakeBackground();
    renderPopup(fake);
    const toggle = await loadedToggle();
    assert.equal(tabbables()[0], toggle);
    assert.equal(toggle.getAttribute('aria-checked'), 'true');
    assert.equal(toggle.getAttribute('aria-label'), 'Route traffic through Switchyard');

    fireEvent.click(toggle);
    await waitFor(() => assert.equal(toggle.getAttribute('aria-checked'), 'false'));
    assert.deepEqual(fake.requests('toggle'), [{ type: 'toggle', enabled: false }]);
    assert.equal(fake.state.enabled, false);

    fireEvent.click(toggle);
    await waitFor(() => assert.equal(toggle.getAttribute('aria-checked'), 'true'));
    assert.deepEqual(fake.requests('toggle'), [
      { type: 'toggle', enabled: false },
      { type: 'toggle', enabled: true },
    ]);
  });

  it('renders from one state.get', async () => {
    const fake = new FakeBackground();
    renderPopup(fake);
    await loadedToggle();
    await screen.findByRole('heading', { name: 'www.example.com' });
    assert.equal(fake.requests('state.get').length, 1);
  });

  it('the status line shows the port, active tunnels and traffic', async () => {
    const fake = new FakeBackground();
    renderPopup(fake);
    await loadedToggle();
    const line = document.querySelector('.status-line');
    assert.ok(line);
    assert.equal(line.textContent, 'Connectedport 10803 tunnelstraffic ↑ 2.0 KB ↓ 5.0 MB');
    assert.deepEqual(
      Array.from(line.querySelectorAll('.status-item'), (el) => el.textContent),
      ['port 1080', '3 tunnels', 'traffic ↑ 2.0 KB ↓ 5.0 MB'],
    );
  });

  it('the site section shows the host, the matching rule and the route with its hops by name', async () => {
    const fake = new FakeBackground();
    fake.siteInfo = (url) => ({ url, host: 'www.example.com', route: CHAIN_ROUTE, errors: [] });
    renderPopup(fake);
    const heading = await screen.findByRole('heading', { name: 'www.example.com' });
    const site = heading.closest('section');
    assert.ok(site);
    await waitFor(() => assert.ok(site.querySelector('.decision-rule')));
    assert.equal(site.querySelector('.decision-rule')?.textContent, 'Example sites (rule 2)');
    assert.equal(site.querySelector('.decision-target')?.textContent, 'via Chain');
    const hops = within(site as HTMLElement).getByRole('list', { name: 'Hops, in order' });
    assert.deepEqual(
      Array.from(hops.querySelectorAll('.hop-name'), (el) => el.textContent),
      ['Office gateway', 'Abroad', 'www.example.com:443'],
    );
    assert.match(site.textContent ?? '', /If Office gateway is down: goes direct/);
    assert.deepEqual(fake.requests('site.info'), [{ type: 'site.info', url: SITE }]);
  });

  it('each one-click action sends exactly site.addRule with its target, for the site’s host', async () => {
    const fake = new FakeBackground();
    renderPopup(fake);
    await screen.findByRole('heading', { name: 'www.example.com' });
    const clickAndWait = async (name: string) => {
      const button = await screen.findByRole<HTMLButtonElement>('button', { name });
      fireEvent.click(button);
      await waitFor(() => assert.equal(button.disabled, false));
      await screen.findByText(/^Added a rule: www\.example\.com now goes /);
    };
    await clickAndWait('Proxy this site via Corp');
    await clickAndWait('Proxy this site via Chain');
    await clickAndWait('Always direct');
    await clickAndWait('Block');
    const host = 'www.example.com';
    assert.deepEqual(fake.requests('site.addRule'), [
      { type: 'site.addRule', host, target: { kind: 'route', routeId: 'corp' } },
      { type: 'site.addRule', host, target: { kind: 'route', routeId: 'chain' } },
      { type: 'site.addRule', host, target: { kind: 'direct' } },
      { type: 'site.addRule', host, target: { kind: 'block' } },
    ]);
    // Nothing else wrote anything: the actions go through site.addRule alone.
    assert.deepEqual(fake.requests('host.request'), []);
    assert.equal(
      screen.getByRole('status', { name: '' }).textContent,
      'Added a rule: www.example.com now goes Block.',
    );
  });

  it('with more than three routes, the route is picked from a select', async () => {
    const base = makeState();
    const routes = ['a', 'b', 'c', 'd'].map((id) => ({
      id,
      name: `Route ${id}`,
      hops: ['gw'],
      onFirstHopDown: 'fail' as const,
    }));
    const fake = new FakeBackground(makeState({ config: { ...base.config!, routes } }));
    renderPopup(fake);
    const select = await screen.findByLabelText<HTMLSelectElement>('Route');
    fireEvent.change(select, { target: { value: 'c' } });
    fireEvent.click(await screen.findByRole('button', { name: 'Proxy this site via Route c' }));
    await waitFor(() => assert.equal(fake.requests('site.addRule').length, 1));
    assert.deepEqual(fake.requests('site.addRule')[0]?.target, { kind: 'route', routeId: 'c' });
  });

  it('host missing: shows the install command, and the copy button copies exactly it', async () => {
    const written = stubClipboard();
    const fake = new FakeBackground(
      makeState({
        host: { state: 'host-missing' },
        config: undefined,
        installCommand: 'npx switchyard install --browser chrome',
      }),
    );
    renderPopup(fake);
    await screen.findByRole('heading', { name: 'The Switchyard host is not installed' });
    assert.equal(
      document.getElementById('install-command')?.textContent,
      'npx switchyard install --browser chrome',
    );
    fireEvent.click(screen.getByRole('button', { name: 'Copy command' }));
    await screen.findByText('Copied');
    assert.deepEqual(written, ['npx switchyard install --browser chrome']);

    fireEvent.click(screen.getByRole('button', { name: 'Try again' }));
    await waitFor(() => assert.equal(fake.requests('host.reconnect').length, 1));
    // Without a host there is nothing to add rules to.
    assert.equal(screen.queryByRole('button', { name: 'Always direct' }), null);
  });

  it('host not reachable: the host’s error once, global problems with advice, and Reconnect', async () => {
    const fake = new FakeBackground(
      makeState({
        host: { state: 'host-error', error: 'the service exited (2): config.json is not valid JSON' },
        config: undefined,
        problems: [
          {
            kind: 'host-down',
            message: 'The Switchyard service is not running.',
            advice: 'Sites that go through the proxy are blocked until it is back (fail-closed).',
            at: 1,
          },
        ],
      }),
    );
    renderPopup(fake);
    await screen.findByText('the service exited (2): config.json is not valid JSON');
    assert.equal(screen.getAllByText(/config\.json is not valid JSON/).length, 1);
    assert.equal(document.querySelector('.status-state')?.textContent, 'Host not reachable');
    const problem = screen.getByText('The Switchyard service is not running.').closest('li');
    assert.equal(
      problem?.querySelector('.advice')?.textContent,
      'Sites that go through the proxy are blocked until it is back (fail-closed).',
    );
    await screen.findByText('Which rule and route this site takes shows here once the host is connected.');
    assert.deepEqual(fake.requests('site.info'), []);
    fireEvent.click(screen.getByRole('button', { name: 'Reconnect' }));
    await waitFor(() => assert.equal(fake.requests('host.reconnect').length, 1));
  });

  it('recent errors for the site are listed newest first, each with what to do', async () => {
    const refused: TunnelEvent = {
      seq: 7,
      time: new Date(2025, 0, 1, 9, 30, 5).getTime(),
      kind: 'failed',
      id: 12,
      client: '127.0.0.1:50000',
      proto: 'socks5',
      cmd: 'connect',
      dest: 'www.example.com:443',
      host: 'www.example.com',
      rule: 'Example sites',
      via: 'route Chain (Office gateway > Abroad)',
      result: 'rep 5 (connection refused)',
      error: 'hop 1 (Office gateway): connect ECONNREFUSED 10.0.0.1:1080',
      hop: 1,
    };
    const denied: TunnelEvent = {
      ...refused,
      seq: 9,
      kind: 'denied',
      error: 'access rule deny-all denies it',
      hop: undefined,
    };
    const fake = new FakeBackground(
      makeState({
        problems: [
          {
            kind: 'upstream-failing',
            message: 'Office gateway is not answering',
            advice: 'Start the gateway',
            host: 'www.example.com',
            at: 1,
          },
          { kind: 'upstream-failing', message: 'For another site', host: 'other.example', at: 2 },
        ],
      }),
    );
    fake.siteInfo = (url) => ({
      url,
      host: 'www.example.com',
      route: CHAIN_ROUTE,
      errors: [refused, denied],
    });
    renderPopup(fake);
    const section = (await screen.findByRole('heading', { name: 'Recent errors for this site' })).closest(
      'section',
    );
    assert.ok(section);
    await waitFor(() => assert.equal(section.querySelectorAll('li').length, 3));
    const items = Array.from(section.querySelectorAll('li'), (li) => ({
      message: li.querySelector('.problem-message')?.textContent,
      advice: li.querySelector('.advice')?.textContent,
    }));
    assert.deepEqual(items, [
      { message: 'Office gateway is not answering', advice: 'Start the gateway' },
      { message: '09:30:05 www.example.com:443: denied', advice: adviceFor(denied) },
      {
        message: '09:30:05 www.example.com:443: hop 1 (Office gateway): connect ECONNREFUSED 10.0.0.1:1080',
        advice: adviceFor(refused),
      },
    ]);
    assert.match(
      adviceFor(refused),
      /^Hop 1 of route Chain \(Office gateway > Abroad\) could not be reached/,
    );
    assert.match(adviceFor(denied), /access rule/);
  });

  it('a page that is not a web site gets no site section and no site.info', async () => {
    const fake = new FakeBackground();
    renderPopup(fake, 'chrome://extensions/');
    await screen.findByText('This page is not a web site, so no proxy carries it.');
    assert.deepEqual(fake.requests('site.info'), []);
  });

  it('Options and Live log open the options page', async () => {
    const fake = new FakeBackground();
    const { opened } = renderPopup(fake);
    await loadedToggle();
    fireEvent.click(screen.getByRole('button', { name: 'Options' }));
    fireEvent.click(screen.getByRole('button', { name: 'Live log' }));
    assert.deepEqual(opened, [undefined, 'log']);
  });
});

describe('popup tab URL', () => {
  it('?url= overrides the active tab (for a popup opened as a tab in tests)', async () => {
    let asked = 0;
    const query = async () => {
      asked++;
      return 'chrome-extension://id/extension/popup/index.html';
    };
    assert.equal(
      await activeTabUrl('?url=https%3A%2F%2Fintranet.corp%2Fx', query),
      'https://intranet.corp/x',
    );
    assert.equal(asked, 0);
    assert.equal(await activeTabUrl('', query), 'chrome-extension://id/extension/popup/index.html');
    assert.equal(await activeTabUrl('', async () => Promise.reject(new Error('no tabs'))), undefined);
  });
});
