/** @jsxRuntime automatic @jsxImportSource preact */
import { tabbables } from './setup.ts';
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/preact';
import type { Upstream } from '../../../shared/config/schema.ts';
import { Options, type TabId } from '../../../extension/options/Options.tsx';
import { FakeBackground, HELLO, makeConfig, makeState, ROUTES, UPSTREAMS } from './fake-client.ts';

afterEach(cleanup);

function renderOptions(fake: FakeBackground, tab: TabId) {
  render(<Options client={fake} initialTab={tab} />);
}

function type(label: string | RegExp, value: string, root: HTMLElement = document.body) {
  fireEvent.input(within(root).getByLabelText(label), { target: { value } });
}

/** Every config.patch and config.replace the page sent, as the JSON that would travel. */
function configPayloads(fake: FakeBackground): string {
  return JSON.stringify([...fake.hostRequests('config.patch'), ...fake.hostRequests('config.replace')]);
}

const PASSWORD = 'hunter2-Secret!';

describe('options: upstreams', () => {
  it('adding an upstream sends config.patch with the whole list, and the password only through credential.set', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'upstreams');
    fireEvent.click(await screen.findByRole('button', { name: 'Add upstream' }));
    const form = screen.getByRole('form', { name: 'New upstream' });
    type('Name', 'Home proxy', form);
    type('Host', 'home.example', form);
    type('Port', '1081', form);
    type('Username', 'me', form);
    type('Password', PASSWORD, form);
    assert.equal(within(form).getByLabelText<HTMLInputElement>('ID').value, 'home-proxy');
    fireEvent.submit(form);
    await screen.findByText('Saved Home proxy.');

    const added: Upstream = {
      id: 'home-proxy',
      name: 'Home proxy',
      type: 'socks5',
      host: 'home.example',
      port: 1081,
      username: 'me',
    };
    assert.deepEqual(fake.hostRequests('config.patch'), [{ patch: { upstreams: [...UPSTREAMS, added] } }]);
    assert.deepEqual(fake.hostRequests('credential.set'), [{ upstreamId: 'home-proxy', password: PASSWORD }]);
    // The upstream exists before its password is stored for it.
    const kinds = fake.requests('host.request').map((r) => r.request.type);
    assert.deepEqual(kinds, ['config.patch', 'credential.set']);
    assert.ok(!configPayloads(fake).includes(PASSWORD));
    assert.equal(screen.queryByDisplayValue(PASSWORD), null);
  });

  it('editing sends the updated list and keeps the id; an empty password field sends no credential.set', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'upstreams');
    fireEvent.click(await screen.findByRole('button', { name: 'Edit Office gateway' }));
    const form = screen.getByRole('form', { name: 'Edit Office gateway' });
    assert.equal(within(form).getByLabelText<HTMLInputElement>('ID').readOnly, true);
    type('Host', 'gw2.corp.example', form);
    fireEvent.change(within(form).getByLabelText('Type'), { target: { value: 'http' } });
    fireEvent.submit(form);
    await screen.findByText('Saved Office gateway.');
    assert.deepEqual(fake.hostRequests('config.patch'), [
      { patch: { upstreams: [{ ...UPSTREAMS[0]!, host: 'gw2.corp.example', type: 'http' }, UPSTREAMS[1]!] } },
    ]);
    assert.deepEqual(fake.hostRequests('credential.set'), []);
  });

  it('a new password for a saved upstream goes through credential.set alone', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'upstreams');
    fireEvent.click(await screen.findByRole('button', { name: 'Edit Office gateway' }));
    const form = screen.getByRole('form', { name: 'Edit Office gateway' });
    type('New password', PASSWORD, form);
    fireEvent.submit(form);
    await screen.findByText('Saved Office gateway.');
    assert.deepEqual(fake.hostRequests('credential.set'), [{ upstreamId: 'gw', password: PASSWORD }]);
    assert.deepEqual(fake.hostRequests('config.patch'), [{ patch: { upstreams: UPSTREAMS } }]);
    assert.ok(!configPayloads(fake).includes(PASSWORD));
  });

  it('field errors stop a save: no host, a bad port, a password without a username', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'upstreams');
    fireEvent.click(await screen.findByRole('button', { name: 'Add upstream' }));
    const form = screen.getByRole('form', { name: 'New upstream' });
    type('Name', 'X', form);
    type('Port', '70000', form);
    type('Password', PASSWORD, form);
    fireEvent.submit(form);
    await within(form).findByText("Enter the proxy's host name or IP address.");
    within(form).getByText('The port must be a whole number from 1 to 65535.');
    within(form).getByText('A password needs a username.');
    assert.equal(within(form).getByLabelText('Host').getAttribute('aria-invalid'), 'true');
    assert.deepEqual(fake.requests('host.request'), []);
  });

  it('removing an upstream sends config.patch without it and deletes its saved password', async () => {
    const spare: Upstream = { id: 'spare', name: 'Spare', type: 'socks5', host: 'spare.example', port: 1080 };
    const fake = new FakeBackground(
      makeState({
        config: makeConfig({ upstreams: [...UPSTREAMS, spare] }),
        passwordSaved: { gw: true, spare: true },
      }),
    );
    renderOptions(fake, 'upstreams');
    fireEvent.click(await screen.findByRole('button', { name: 'Remove Spare' }));
    fireEvent.click(screen.getByRole('button', { name: 'Yes, remove Spare' }));
    await screen.findByText('Removed Spare.');
    assert.deepEqual(fake.hostRequests('config.patch'), [{ patch: { upstreams: UPSTREAMS } }]);
    assert.deepEqual(fake.hostRequests('credential.delete'), [{ upstreamId: 'spare' }]);
  });

  it('an upstream a route uses is not removed: the page says which route', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'upstreams');
    fireEvent.click(await screen.findByRole('button', { name: 'Remove Abroad' }));
    await screen.findByText('Used by Chain: take it out of that route first.');
    assert.equal(screen.queryByRole('button', { name: /Yes, remove/ }), null);
    assert.deepEqual(fake.requests('host.request'), []);
  });

  it('the password field only writes, and says where the saved password is kept (keyring)', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'upstreams');
    fireEvent.click(await screen.findByRole('button', { name: 'Edit Office gateway' }));
    const input = screen.getByLabelText<HTMLInputElement>('New password');
    assert.equal(input.type, 'password');
    assert.equal(input.value, '');
    assert.equal(input.getAttribute('autocomplete'), 'new-password');
    const hint = document.getElementById(`${input.id}-hint`);
    assert.match(
      hint?.textContent ?? '',
      /^A password is saved in your OS keyring \(Secret Service \(GNOME Keyring\)\)\. This field only writes/,
    );
    assert.equal(input.getAttribute('aria-describedby'), `${input.id}-hint`);
    // The card of an upstream with no saved password says so.
    const abroad = screen.getByRole('heading', { name: 'Abroad' }).closest('li');
    assert.ok(abroad);
    within(abroad as HTMLElement).getByText('No password saved.');
  });

  it('with the file fallback, the status says so honestly', async () => {
    const base = makeState();
    const fake = new FakeBackground(
      makeState({
        host: {
          ...base.host,
          hello: {
            ...HELLO,
            credentialStore: { kind: 'file', description: '/home/me/.config/switchyard/credentials' },
          },
        },
      }),
    );
    renderOptions(fake, 'upstreams');
    await screen.findByText(
      'A password is saved in a file on this computer, not in an OS keyring: /home/me/.config/switchyard/credentials. Only your user account can read the file, but so can any program you run.',
    );
  });

  it("Check shows each hop's result and time", async () => {
    const fake = new FakeBackground();
    fake.checkResult = (name) => ({
      label: `route ${name} (Office gateway > Abroad)`,
      destination: 'example.com:443',
      ok: false,
      hops: [
        { hop: 1, name: 'Office gateway', ok: true, ms: 35 },
        { hop: 2, name: 'Abroad', ok: false, ms: 1200, error: 'handshake timed out' },
      ],
    });
    renderOptions(fake, 'upstreams');
    fireEvent.click(await screen.findByRole('button', { name: 'Check Office gateway' }));
    const hops = await screen.findByRole('list', { name: 'Check results by hop' });
    assert.deepEqual(
      Array.from(hops.querySelectorAll('li'), (li) => Array.from(li.children, (c) => c.textContent)),
      [
        ['1. Office gateway', 'ok', '35 ms'],
        ['2. Abroad', 'failed', '1.2 s', 'handshake timed out'],
      ],
    );
    assert.deepEqual(fake.hostRequests('check'), [{ name: 'gw', target: 'example.com:443' }]);
  });
});

describe('options: routes', () => {
  it('moving a hop sends config.patch with the new order, and focus stays on the moved hop', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'routes');
    const down = await screen.findByRole('button', { name: 'Move Office gateway down in Chain' });
    // Plain buttons in the Tab order: reachable and usable from the keyboard.
    assert.ok(tabbables().includes(down));
    fireEvent.click(down);
    await waitFor(() => assert.equal(fake.hostRequests('config.patch').length, 1));
    assert.deepEqual(fake.hostRequests('config.patch'), [
      { patch: { routes: [ROUTES[0]!, { ...ROUTES[1]!, hops: ['abroad', 'gw'] }] } },
    ]);
    // Now last, its down button is disabled: focus goes to its up button.
    await waitFor(() =>
      assert.equal(document.activeElement?.getAttribute('aria-label'), 'Move Office gateway up in Chain'),
    );

    fireEvent.click(screen.getByRole('button', { name: 'Move Office gateway up in Chain' }));
    await waitFor(() => assert.equal(fake.hostRequests('config.patch').length, 2));
    assert.deepEqual(fake.hostRequests('config.patch')[1], { patch: { routes: ROUTES } });
  });

  it('the first-hop-down select sends config.patch with onFirstHopDown', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'routes');
    const select = await screen.findByLabelText<HTMLSelectElement>(
      'When the first hop (Office gateway) is down',
      {
        selector: '#route-corp-failover',
      },
    );
    assert.deepEqual(
      Array.from(select.options, (o) => o.value),
      ['fail', 'direct', 'route:chain'],
    );
    fireEvent.change(select, { target: { value: 'route:chain' } });
    await waitFor(() => assert.equal(fake.hostRequests('config.patch').length, 1));
    assert.deepEqual(fake.hostRequests('config.patch')[0], {
      patch: { routes: [{ ...ROUTES[0]!, onFirstHopDown: { route: 'chain' } }, ROUTES[1]!] },
    });
    fireEvent.change(select, { target: { value: 'direct' } });
    await waitFor(() => assert.equal(fake.hostRequests('config.patch').length, 2));
    assert.deepEqual(fake.hostRequests('config.patch')[1], {
      patch: { routes: [{ ...ROUTES[0]!, onFirstHopDown: 'direct' }, ROUTES[1]!] },
    });
  });

  it('a new route gets its id from its name and its first hop', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'routes');
    fireEvent.click(await screen.findByRole('button', { name: 'Add route' }));
    const form = screen.getByRole('form', { name: 'New route' });
    type('Name', 'Via abroad', form);
    fireEvent.change(within(form).getByLabelText('First hop'), { target: { value: 'abroad' } });
    fireEvent.submit(form);
    await waitFor(() => assert.equal(fake.hostRequests('config.patch').length, 1));
    assert.deepEqual(fake.hostRequests('config.patch')[0], {
      patch: {
        routes: [
          ...ROUTES,
          { id: 'via-abroad', name: 'Via abroad', hops: ['abroad'], onFirstHopDown: 'fail' },
        ],
      },
    });
  });
});

describe('options: tabs', () => {
  it('arrow keys move between tabs, and the panel follows', async () => {
    const fake = new FakeBackground();
    renderOptions(fake, 'upstreams');
    const first = await screen.findByRole('tab', { name: 'Upstreams' });
    assert.equal(first.getAttribute('aria-selected'), 'true');
    fireEvent.keyDown(first, { key: 'ArrowRight' });
    const routes = screen.getByRole('tab', { name: 'Routes' });
    assert.equal(routes.getAttribute('aria-selected'), 'true');
    assert.equal(document.activeElement, routes);
    await screen.findByRole('heading', { name: 'Routes' });
  });
});
