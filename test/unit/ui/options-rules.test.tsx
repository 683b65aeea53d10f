/** @jsxRuntime automatic @jsxImportSource preact */
import './setup.ts';
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { performance } from 'node:perf_hooks';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/preact';
import type { RouteResult } from '../../../shared/messages/protocol.ts';
import type { Rule } from '../../../shared/rules/types.ts';
import { validateHostPattern } from '../../../shared/rules/validate.ts';
import { Options, type TabId } from '../../../extension/options/Options.tsx';
import { RULE_ROW_HEIGHT } from '../../../extension/options/Rules.tsx';
import { FakeBackground, makeConfig, makeRules, makeState } from './fake-client.ts';

afterEach(cleanup);

function renderOptions(fake: FakeBackground, tab: TabId) {
  render(<Options client={fake} initialTab={tab} />);
}

function withRules(rules: Rule[]): FakeBackground {
  return new FakeBackground(makeState({ config: makeConfig({ rules }) }));
}

function rows(): HTMLElement[] {
  return Array.from(
    screen.getByRole('list', { name: 'Rules' }).querySelectorAll<HTMLElement>('li.vlist-row'),
  );
}

function rowNames(): string[] {
  return rows().map((row) => row.querySelector('.rule-name')?.textContent ?? '');
}

function patchedRuleIds(fake: FakeBackground, n: number): string[] {
  const rules = fake.hostRequests('config.patch')[n]?.patch.rules;
  assert.ok(rules, `config.patch #${n} carries rules`);
  return rules.map((r) => r.id);
}

describe('options: rules list', () => {
  it('10,000 rules render fewer than 60 rows at a time, also after scrolling', async () => {
    const fake = withRules(makeRules(10_000));
    renderOptions(fake, 'rules');
    await screen.findByRole('list', { name: 'Rules' });
    const first = rows();
    assert.ok(first.length > 0 && first.length < 60, `${first.length} rows rendered`);
    assert.equal(first[0]?.getAttribute('aria-setsize'), '10000');
    assert.equal(rowNames()[0], 'Rule 0');

    // The list scrolls inside its viewport, the list's parent.
    const viewport = screen.getByRole('list', { name: 'Rules' }).parentElement;
    assert.ok(viewport);
    viewport.scrollTop = 5000 * RULE_ROW_HEIGHT;
    fireEvent.scroll(viewport);
    await waitFor(() => assert.ok(rowNames().includes('Rule 5000')));
    const after = rows();
    assert.ok(after.length < 60, `${after.length} rows rendered after scrolling`);
    // Positioned where a full list would have them, so the scrollbar tells the truth.
    const row5000 = after.find((r) => r.getAttribute('aria-posinset') === '5001');
    assert.equal(row5000?.style.top, `${5000 * RULE_ROW_HEIGHT}px`);
  });

  it('searching 10,000 rules narrows the list, in well under 200 ms', async () => {
    const fake = withRules(makeRules(10_000));
    renderOptions(fake, 'rules');
    const search = await screen.findByRole('searchbox', { name: 'Search rules' });
    const started = performance.now();
    fireEvent.input(search, { target: { value: 'site9999.example' } });
    await waitFor(() => assert.deepEqual(rowNames(), ['Rule 9999']), { interval: 5 });
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 200, `filtering took ${elapsed.toFixed(1)} ms`);
    screen.getByText(/^1 of 10,000 rules/);

    fireEvent.input(search, { target: { value: 'SITE999' } });
    await waitFor(() => assert.equal(rows()[0]?.getAttribute('aria-setsize'), '11'));
    // By target too: the filter select narrows to one kind.
    fireEvent.input(search, { target: { value: '' } });
    fireEvent.change(screen.getByLabelText('Show'), { target: { value: 'block' } });
    await waitFor(() =>
      assert.equal(rows()[0]?.getAttribute('aria-setsize'), String(Math.floor(10_000 / 3))),
    );
    assert.equal(rowNames()[0], 'Rule 2');
  });

  it('a rule can be edited from a search over 10,000 rules without the list freezing', async () => {
    const fake = withRules(makeRules(10_000));
    renderOptions(fake, 'rules');
    fireEvent.input(await screen.findByRole('searchbox', { name: 'Search rules' }), {
      target: { value: 'site7777.' },
    });
    await waitFor(() => assert.deepEqual(rowNames(), ['Rule 7777']));
    fireEvent.click(screen.getByRole('button', { name: 'Edit Rule 7777' }));
    const form = screen.getByRole('form', { name: 'Edit rule Rule 7777' });
    fireEvent.input(within(form).getByLabelText('Name'), { target: { value: 'Renamed' } });
    fireEvent.submit(form);
    await screen.findByText('Saved rule Renamed.');
    const sent = fake.hostRequests('config.patch')[0]?.patch.rules;
    assert.equal(sent?.length, 10_000);
    assert.equal(sent?.[7777]?.name, 'Renamed');
    assert.equal(sent?.[7777]?.id, 'r7777');
  });

  it('enabling and disabling sends config.patch with that rule flipped and the order unchanged', async () => {
    const rules = makeRules(3);
    const fake = withRules(rules);
    renderOptions(fake, 'rules');
    const box = await screen.findByRole<HTMLInputElement>('checkbox', { name: 'Enabled: Rule 1' });
    assert.equal(box.checked, true);
    fireEvent.click(box);
    await waitFor(() => assert.equal(fake.hostRequests('config.patch').length, 1));
    assert.deepEqual(fake.hostRequests('config.patch')[0], {
      patch: { rules: [rules[0]!, { ...rules[1]!, enabled: false }, rules[2]!] },
    });
    await waitFor(() =>
      assert.equal(
        screen.getByRole<HTMLInputElement>('checkbox', { name: 'Enabled: Rule 1' }).checked,
        false,
      ),
    );

    // rule 0 starts disabled (makeRules disables every seventh).
    fireEvent.click(screen.getByRole('checkbox', { name: 'Enabled: Rule 0' }));
    await waitFor(() => assert.equal(fake.hostRequests('config.patch').length, 2));
    assert.deepEqual(fake.hostRequests('config.patch')[1], {
      patch: { rules: [{ ...rules[0]!, enabled: true }, { ...rules[1]!, enabled: false }, rules[2]!] },
    });
  });

  it('reordering sends config.patch with the new order, by button and by Alt+arrow with focus following', async () => {
    const fake = withRules(makeRules(3));
    renderOptions(fake, 'rules');
    fireEvent.click(await screen.findByRole('button', { name: 'Move Rule 0 down' }));
    await waitFor(() => assert.equal(fake.hostRequests('config.patch').length, 1));
    assert.deepEqual(patchedRuleIds(fake, 0), ['r1', 'r0', 'r2']);
    await waitFor(() => assert.deepEqual(rowNames(), ['Rule 1', 'Rule 0', 'Rule 2']));

    const row = rows().find((r) => r.querySelector('.rule-name')?.textContent === 'Rule 2');
    assert.ok(row);
    row.focus();
    fireEvent.keyDown(row, { key: 'ArrowUp', altKey: true });
    await waitFor(() => assert.equal(fake.hostRequests('config.patch').length, 2));
    assert.deepEqual(patchedRuleIds(fake, 1), ['r1', 'r2', 'r0']);
    await waitFor(() =>
      assert.equal(
        (document.activeElement as HTMLElement | null)?.querySelector('.rule-name')?.textContent,
        'Rule 2',
      ),
    );
    assert.equal((document.activeElement as HTMLElement).getAttribute('aria-posinset'), '2');
  });

  it('arrow keys move between rows; Enter edits and Space toggles the focused rule', async () => {
    const fake = withRules(makeRules(3));
    renderOptions(fake, 'rules');
    await screen.findByRole('list', { name: 'Rules' });
    const first = rows()[0]!;
    assert.equal(first.tabIndex, 0);
    assert.equal(rows()[1]!.tabIndex, -1);
    first.focus();
    fireEvent.keyDown(first, { key: 'ArrowDown' });
    await waitFor(() => assert.equal(document.activeElement?.getAttribute('aria-posinset'), '2'));
    const second = document.activeElement as HTMLElement;
    fireEvent.keyDown(second, { key: ' ' });
    await waitFor(() => assert.equal(fake.hostRequests('config.patch').length, 1));
    assert.equal(fake.hostRequests('config.patch')[0]?.patch.rules?.[1]?.enabled, false);
    fireEvent.keyDown(second, { key: 'Enter' });
    await screen.findByRole('form', { name: 'Edit rule Rule 1' });
  });
});

describe('options: rule editor', () => {
  it('shows the shared validator’s message for a bad pattern, and does not save', async () => {
    const fake = withRules(makeRules(3));
    renderOptions(fake, 'rules');
    fireEvent.click(await screen.findByRole('button', { name: 'Add rule' }));
    const form = screen.getByRole('form', { name: 'New rule' });
    fireEvent.change(within(form).getByLabelText('Pattern 1 type'), { target: { value: 'domain' } });
    fireEvent.input(within(form).getByLabelText('Pattern 1'), { target: { value: 'example.com' } });
    fireEvent.input(within(form).getByLabelText('Ports'), { target: { value: '443, 99999' } });
    fireEvent.submit(form);

    const expected = validateHostPattern({ type: 'domain', value: 'example.com' })[0]?.message;
    assert.equal(
      expected,
      "'example.com' is not a valid domain pattern: it must start with '*.', as in '*.example.com' (or use an exact pattern for this one host)",
    );
    const patternError = await within(form).findByText(expected);
    assert.equal(patternError.closest('[id]')?.id, 'rule-pattern-0-error');
    assert.equal(within(form).getByLabelText('Pattern 1').getAttribute('aria-invalid'), 'true');
    within(form).getByText('a port must be a whole number from 1 to 65535, not 99999');
    within(form).getByText('Not saved: fix the 2 problems above.');
    assert.deepEqual(fake.requests('host.request'), []);

    // Fixed, it saves: first in the list, as the position select says by default.
    fireEvent.input(within(form).getByLabelText('Pattern 1'), { target: { value: '*.example.com' } });
    fireEvent.input(within(form).getByLabelText('Ports'), { target: { value: '443, 8000-8999' } });
    fireEvent.change(within(form).getByLabelText('Send matching sites'), { target: { value: 'block' } });
    fireEvent.input(within(form).getByLabelText('Name'), { target: { value: 'Example' } });
    fireEvent.submit(form);
    await screen.findByText('Saved rule Example.');
    const sent = fake.hostRequests('config.patch')[0]?.patch.rules;
    assert.deepEqual(sent?.[0], {
      id: 'rule-4',
      enabled: true,
      name: 'Example',
      match: { hosts: [{ type: 'domain', value: '*.example.com' }], ports: [443, { from: 8000, to: 8999 }] },
      target: { kind: 'block' },
    });
    assert.deepEqual(
      sent?.slice(1).map((r) => r.id),
      ['r0', 'r1', 'r2'],
    );
  });

  it('a duplicate id and a regex the validator refuses are both reported', async () => {
    const fake = withRules(makeRules(3));
    renderOptions(fake, 'rules');
    fireEvent.click(await screen.findByRole('button', { name: 'Add rule' }));
    const form = screen.getByRole('form', { name: 'New rule' });
    fireEvent.input(within(form).getByLabelText('ID'), { target: { value: 'r1' } });
    fireEvent.change(within(form).getByLabelText('Pattern 1 type'), { target: { value: 'regex' } });
    fireEvent.input(within(form).getByLabelText('Pattern 1'), { target: { value: '(a+)+$' } });
    fireEvent.submit(form);
    await within(form).findByText("the id 'r1' is already used by rule 2");
    const expected = validateHostPattern({ type: 'regex', value: '(a+)+$' })[0]?.message;
    assert.ok(expected);
    within(form).getByText(expected);
    assert.deepEqual(fake.requests('host.request'), []);
  });
});

describe('options: tester', () => {
  it('shows the rule, the route and its hops from the host’s route answer', async () => {
    const route: RouteResult = {
      destination: 'intranet.corp.example:443',
      rule: 'Rule 0',
      ruleId: 'r0',
      target: { kind: 'route', routeId: 'chain' },
      route: { id: 'chain', name: 'Chain', label: 'route Chain (Office gateway > Abroad)' },
      hops: [
        { id: 'gw', name: 'Office gateway', type: 'socks5', host: 'gw.corp.example', port: 1080 },
        { id: 'abroad', name: 'Abroad', type: 'http', host: 'proxy.abroad.example', port: 3128 },
      ],
      onFirstHopDown: 'direct',
      description: 'intranet.corp.example:443 -> rule Rule 0 -> route Chain (Office gateway > Abroad)',
    };
    const fake = withRules(makeRules(3));
    fake.routeResult = route;
    renderOptions(fake, 'tester');
    fireEvent.input(await screen.findByLabelText('URL or host'), {
      target: { value: 'https://intranet.corp.example/wiki' },
    });
    fireEvent.click(screen.getByRole('button', { name: 'Test' }));
    const rule = await waitFor(() => {
      const el = document.querySelector('.tester-rule');
      assert.ok(el);
      return el;
    });
    assert.deepEqual(fake.hostRequests('route'), [{ target: 'https://intranet.corp.example/wiki' }]);
    assert.equal(rule.textContent, 'Rule 0 (rule 1)');
    assert.equal(document.querySelector('.tester-target')?.textContent, 'via route Chain');
    assert.deepEqual(
      Array.from(
        screen.getByRole('list', { name: 'Hops, in order' }).querySelectorAll('.hop-name'),
        (el) => el.textContent,
      ),
      ['Office gateway', 'Abroad', 'intranet.corp.example:443'],
    );
    screen.getByText('goes direct');
    screen.getByText(route.description);
  });

  it('says when no rule matches and the default applies', async () => {
    const fake = withRules(makeRules(3));
    fake.routeResult = {
      destination: 'example.org:80',
      rule: 'default',
      target: { kind: 'direct' },
      hops: [],
      description: 'example.org:80 -> default -> direct',
    };
    renderOptions(fake, 'tester');
    fireEvent.input(await screen.findByLabelText('URL or host'), { target: { value: 'example.org:80' } });
    fireEvent.click(screen.getByRole('button', { name: 'Test' }));
    await screen.findByText('No rule matches: the default applies');
    assert.equal(document.querySelector('.tester-target')?.textContent, 'Direct');
    assert.equal(screen.queryByRole('list', { name: 'Hops, in order' }), null);
  });
});
