// The extension background's pure parts: the state machine, the badge, the proxy plan (run as a
// browser would run the PAC), the popup's one-click rule, what storage keeps, and the native
// port's protocol handling against a fake port and fake timers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import vm from 'node:vm';
import { BADGE_COLORS, badgeFor } from '../../extension/background/badge.ts';
import {
  BACKOFF_MAX_MS,
  type ConnectionEvent,
  HostConnection,
  HostRequestError,
  type NativePort,
  type Timers,
} from '../../extension/background/host-connection.ts';
import { ProxySetting, type SettingApi, proxyPlan } from '../../extension/background/proxy-control.ts';
import { SiteRuleError, hostOf, siteDomain, withSiteRule } from '../../extension/background/site-rule.ts';
import {
  type Action,
  type BackgroundState,
  HOST_NOT_FOUND,
  INSTALL_COMMAND,
  initialState,
  isUpstreamFailure,
  parseEndpoint,
  reduce,
  rememberedOf,
  uiStateOf,
} from '../../extension/background/state.ts';
import { STORAGE_KEY, parseRemembered, parseSettings } from '../../extension/background/storage.ts';
import type { Problem, UiState } from '../../extension/shared/ui-protocol.ts';
import { type Config, type ConfigInput, configSchema } from '../../shared/config/schema.ts';
import type { HelloResult, StatusResult } from '../../shared/messages/protocol.ts';
import type { TunnelEvent } from '../../shared/messages/tunnel-event.ts';

const HELLO: HelloResult = {
  protocol: 1,
  hostVersion: '0.1.0',
  capabilities: [],
  credentialStore: { kind: 'file', description: 'test' },
  platform: 'linux',
};

function status(overrides: Partial<StatusResult> = {}): StatusResult {
  return {
    listening: '127.0.0.1:1080',
    enabled: true,
    activeTunnels: 0,
    bytesUp: 0,
    bytesDown: 0,
    uptimeMs: 1,
    startedBy: 'bridge',
    pid: 42,
    configPath: '/tmp/config.json',
    controlClients: 1,
    ...overrides,
  };
}

function config(overrides: Omit<Partial<ConfigInput>, 'version'> = {}): Config {
  return configSchema.parse({
    version: 1,
    upstreams: [{ id: 'exit', type: 'socks5', host: 'exit.example', port: 1080, username: 'u' }],
    routes: [{ id: 'abroad', hops: ['exit'] }],
    rules: [
      {
        id: 'local',
        enabled: true,
        match: { hosts: [{ type: 'domain', value: '*.direct.test' }] },
        target: { kind: 'direct' },
      },
      {
        id: 'all-test',
        enabled: true,
        match: { hosts: [{ type: 'domain', value: '*.test' }] },
        target: { kind: 'route', routeId: 'abroad' },
      },
    ],
    ...overrides,
  });
}

function run(actions: readonly Action[], from: BackgroundState = initialState()): BackgroundState {
  return actions.reduce(reduce, from);
}

/** Connected to a host whose config says `enabled`. */
function connected(enabled = true, extra: readonly Action[] = []): BackgroundState {
  return run([
    { type: 'port.connecting', at: 1 },
    { type: 'port.ready', hello: HELLO, at: 2 },
    { type: 'status', status: status() },
    { type: 'config', config: config({ enabled }), passwordSaved: { exit: true }, revision: 3 },
    { type: 'proxy.control', level: 'controlled_by_this_extension', at: 3 },
    ...extra,
  ]);
}

function event(overrides: Partial<TunnelEvent>): TunnelEvent {
  return {
    seq: 1,
    time: 100,
    kind: 'opened',
    id: 1,
    client: '127.0.0.1:5000',
    proto: 'socks5',
    cmd: 'connect',
    dest: 'proxied.test:80',
    host: 'proxied.test',
    ...overrides,
  };
}

function kinds(state: UiState): string[] {
  return state.problems.map((p) => p.kind);
}

describe('background state machine', () => {
  it('starts connecting, off, with no problem and an OFF badge', () => {
    const ui = uiStateOf(initialState());
    assert.equal(ui.host.state, 'connecting');
    assert.equal(ui.enabled, false);
    assert.deepEqual(ui.problems, []);
    assert.equal(ui.badge.text, 'OFF');
    assert.equal(ui.installCommand, INSTALL_COMMAND);
  });

  it('shows the remembered toggle until the host answers, then the host config wins', () => {
    const restored = run([
      {
        type: 'restored',
        remembered: { settings: parseSettings({}), enabled: true, endpoint: { host: '127.0.0.1', port: 9 } },
      },
    ]);
    assert.equal(uiStateOf(restored).enabled, true);
    assert.equal(uiStateOf(restored).badge.text, 'ON');
    const answered = run(
      [
        { type: 'port.ready', hello: HELLO, at: 2 },
        { type: 'config', config: config({ enabled: false }), passwordSaved: {}, revision: 1 },
      ],
      restored,
    );
    assert.equal(answered.enabled, false);
    assert.equal(uiStateOf(answered).host.state, 'connected');
  });

  it('takes the proxy address from the running status over the config file', () => {
    const s = run([
      { type: 'status', status: status({ listening: '127.0.0.1:40000' }) },
      { type: 'config', config: config({ listen: { port: 1080 } }), passwordSaved: {}, revision: 1 },
    ]);
    assert.deepEqual(s.endpoint, { host: '127.0.0.1', port: 40000 });
    assert.match(uiStateOf(s).badge.title, /127\.0\.0\.1:40000/);
  });

  it('follows config events for the toggle', () => {
    const s = reduce(connected(true), { type: 'config.changed', revision: 4, enabled: false });
    assert.equal(s.enabled, false);
  });

  it('says the host is missing, with the install command, from the browser error', () => {
    const s = run([{ type: 'port.closed', error: HOST_NOT_FOUND, at: 5 }]);
    const ui = uiStateOf(s);
    assert.equal(ui.host.state, 'host-missing');
    assert.equal(ui.host.error, HOST_NOT_FOUND);
    assert.deepEqual(kinds(ui), ['host-missing']);
    assert.match(ui.problems[0]!.advice ?? '', /switchyard install/);
    assert.equal(ui.badge.text, '!');
    assert.match(
      ui.badge.title,
      /^Switchyard is off, but there is a problem: The Switchyard host is not installed/,
    );
  });

  it('keeps showing a failure while it retries, and its first time', () => {
    const missing = run([
      { type: 'port.connecting', at: 1 },
      { type: 'port.closed', error: HOST_NOT_FOUND, at: 2 },
    ]);
    const retrying = run(
      [
        { type: 'port.connecting', at: 3 },
        { type: 'port.closed', error: HOST_NOT_FOUND, at: 4 },
      ],
      missing,
    );
    assert.equal(reduce(missing, { type: 'port.connecting', at: 3 }), missing);
    assert.equal(uiStateOf(retrying).problems[0]!.at, 2);
    assert.equal(
      uiStateOf(reduce(retrying, { type: 'port.ready', hello: HELLO, at: 5 })).host.state,
      'connected',
    );
  });

  it('tells a host that exited from one that is missing', () => {
    const ui = uiStateOf(
      reduce(connected(), { type: 'port.closed', error: 'Native host has exited.', at: 9 }),
    );
    assert.equal(ui.host.state, 'host-error');
    assert.deepEqual(kinds(ui), ['host-down']);
    assert.match(ui.problems[0]!.message, /Native host has exited/);
    assert.match(ui.problems[0]!.advice ?? '', /fail-closed/);
  });

  it('reports a service the bridge cannot reach, keeping the time it first went down', () => {
    const down = run(
      [
        { type: 'service.down', error: 'the service stopped', at: 10 },
        { type: 'service.down', error: 'could not start the switchyard service: it exited (2)', at: 20 },
      ],
      connected(),
    );
    const ui = uiStateOf(down);
    assert.equal(ui.host.state, 'host-error');
    assert.equal(ui.host.error, 'could not start the switchyard service: it exited (2)');
    assert.deepEqual(kinds(ui), ['host-down']);
    assert.equal(ui.problems[0]!.at, 10);
    assert.equal(ui.problems[0]!.message, 'The Switchyard service is not running.');
    assert.equal(ui.enabled, true, 'the toggle stays: fail-closed needs it');
    assert.equal(ui.host.status, undefined);
    const back = run([{ type: 'port.ready', hello: HELLO, at: 30 }], down);
    assert.deepEqual(uiStateOf(back).problems, []);
  });

  it('says fallback instead of fail-closed in the advice when the user chose it', () => {
    const s = run(
      [
        { type: 'settings', settings: parseSettings({ failMode: 'fallback-direct' }) },
        { type: 'service.down', error: 'x', at: 1 },
      ],
      connected(),
    );
    assert.match(uiStateOf(s).problems[0]!.advice ?? '', /go direct until it is back/);
  });

  it('keeps a toggle made while the host was away, and it wins over the config until sent', () => {
    const away = run([{ type: 'port.closed', error: 'Native host has exited.', at: 1 }], connected(false));
    const toggled = reduce(away, { type: 'toggled', enabled: true, pending: true });
    assert.equal(toggled.enabled, true);
    assert.equal(toggled.pendingToggle, true);
    assert.equal(rememberedOf(toggled).pendingToggle, true);
    const reloaded = reduce(toggled, {
      type: 'config',
      config: config({ enabled: false }),
      passwordSaved: {},
      revision: 9,
    });
    assert.equal(reloaded.enabled, true);
    const sent = reduce(reloaded, { type: 'toggled', enabled: true, pending: false });
    assert.equal(sent.pendingToggle, undefined);
  });

  it('reports another extension controlling the proxy only while on', () => {
    const on = reduce(connected(true), {
      type: 'proxy.control',
      level: 'controlled_by_other_extensions',
      at: 7,
    });
    assert.deepEqual(kinds(uiStateOf(on)), ['proxy-controlled-elsewhere']);
    assert.equal(uiStateOf(on).problems[0]!.at, 7);
    assert.match(uiStateOf(on).badge.title, /Another extension controls/);
    const off = reduce(connected(false), {
      type: 'proxy.control',
      level: 'controlled_by_other_extensions',
      at: 7,
    });
    assert.deepEqual(uiStateOf(off).problems, []);
    const locked = reduce(connected(true), { type: 'proxy.control', level: 'not_controllable', at: 7 });
    assert.match(uiStateOf(locked).problems[0]!.message, /locked/);
  });

  it('reports proxy errors until a tunnel opens, and PAC failures as such', () => {
    const failed = reduce(connected(), {
      type: 'proxy.error',
      error: { error: 'net::ERR_PROXY_CONNECTION_FAILED', details: '', fatal: true, at: 5 },
    });
    assert.deepEqual(kinds(uiStateOf(failed)), ['proxy-error']);
    const healed = reduce(failed, { type: 'log', events: [event({ kind: 'opened' })] });
    assert.deepEqual(uiStateOf(healed).problems, []);
    const pac = reduce(connected(), {
      type: 'proxy.error',
      error: { error: 'net::ERR_PAC_SCRIPT_FAILED', details: 'line: 1: boom', fatal: false, at: 5 },
    });
    assert.deepEqual(kinds(uiStateOf(pac)), ['pac-failed']);
    const notApplied = reduce(connected(), { type: 'pac.failed', message: 'rules[0]: bad', at: 6 });
    assert.deepEqual(kinds(uiStateOf(notApplied)), ['pac-failed']);
    assert.deepEqual(uiStateOf(reduce(notApplied, { type: 'pac.applied' })).problems, []);
  });

  it('does not repeat connection errors that the host being down already explains', () => {
    const s = run(
      [
        { type: 'service.down', error: 'gone', at: 1 },
        {
          type: 'proxy.error',
          error: { error: 'net::ERR_PROXY_CONNECTION_FAILED', details: '', fatal: true, at: 2 },
        },
      ],
      connected(),
    );
    assert.deepEqual(kinds(uiStateOf(s)), ['host-down']);
  });

  it('finds a failing upstream in the host log and forgets it once a tunnel gets through', () => {
    const via = 'route abroad (exit)';
    const refused = event({
      kind: 'failed',
      via,
      hop: 1,
      error: 'hop 1 (exit) unreachable: connect ECONNREFUSED 127.0.0.1:9',
      time: 50,
    });
    const s = reduce(connected(), { type: 'log', events: [refused] });
    const ui = uiStateOf(s);
    assert.deepEqual(kinds(ui), ['upstream-failing']);
    const problem: Problem = ui.problems[0]!;
    assert.match(problem.message, /route abroad \(exit\) is failing: hop 1 \(exit\) unreachable/);
    assert.equal(problem.host, 'proxied.test');
    assert.match(problem.advice ?? '', /switchyard check abroad --target proxied\.test:80/);
    assert.equal(problem.at, 50);
    const healed = reduce(s, { type: 'log', events: [event({ kind: 'opened', via })] });
    assert.deepEqual(uiStateOf(healed).problems, []);
    // Off: nothing goes through the upstream, so its failures are not the user's problem now.
    assert.deepEqual(uiStateOf(reduce(s, { type: 'toggled', enabled: false, pending: false })).problems, []);
  });

  it('blames the upstream only for failures of the upstream, not of the site', () => {
    const base = { kind: 'failed' as const, via: 'route abroad (exit)', hop: 1 };
    assert.equal(
      isUpstreamFailure(
        event({ ...base, error: "hop 1 (exit) rejected the username/password for user 'u'" }),
      ),
      true,
    );
    assert.equal(
      isUpstreamFailure(
        event({ ...base, error: 'hop 1 (exit) upstream replied REP 5 (connection refused)' }),
      ),
      false,
    );
    assert.equal(
      isUpstreamFailure(
        event({
          ...base,
          hop: 2,
          error: 'hop 2 (far) unreachable through hop 1 (exit): upstream replied REP 4',
        }),
      ),
      true,
    );
    assert.equal(
      isUpstreamFailure(event({ kind: 'failed', error: 'connect ECONNREFUSED' })),
      false,
      'direct exit',
    );
    assert.equal(isUpstreamFailure(event({ ...base, kind: 'closed' })), false);
  });

  it('leaves the state alone for log events that change nothing', () => {
    const s = connected();
    assert.equal(reduce(s, { type: 'log', events: [event({})] }), s);
  });

  it('parses listen addresses into where the browser can reach them', () => {
    assert.deepEqual(parseEndpoint('127.0.0.1:1080'), { host: '127.0.0.1', port: 1080 });
    assert.deepEqual(parseEndpoint('[::1]:1080'), { host: '::1', port: 1080 });
    assert.deepEqual(parseEndpoint('0.0.0.0:1080'), { host: '127.0.0.1', port: 1080 });
    assert.deepEqual(parseEndpoint('[::]:1080'), { host: '::1', port: 1080 });
    assert.equal(parseEndpoint('127.0.0.1'), undefined);
    assert.equal(parseEndpoint('127.0.0.1:0'), undefined);
  });
});

describe('badge', () => {
  const problem: Problem = { kind: 'host-down', message: 'The host is not running.', at: 1 };

  it('is one of three looks, each with its own text and colour', () => {
    const on = badgeFor({ enabled: true, problems: [], endpoint: '127.0.0.1:1080' });
    const off = badgeFor({ enabled: false, problems: [] });
    const bad = badgeFor({ enabled: true, problems: [problem] });
    assert.deepEqual(
      [on, off, bad].map((b) => [b.text, b.color]),
      [
        ['ON', BADGE_COLORS.on],
        ['OFF', BADGE_COLORS.off],
        ['!', BADGE_COLORS.problem],
      ],
    );
    assert.equal(new Set(Object.values(BADGE_COLORS)).size, 3);
  });

  it('says in the tooltip whether it is on or off, and which problem', () => {
    assert.equal(
      badgeFor({ enabled: true, problems: [], endpoint: '127.0.0.1:1080' }).title,
      'Switchyard is on: sites go by your rules through the local proxy at 127.0.0.1:1080.',
    );
    assert.equal(
      badgeFor({ enabled: false, problems: [] }).title,
      "Switchyard is off: the browser's own proxy settings apply.",
    );
    assert.equal(
      badgeFor({ enabled: false, problems: [problem] }).title,
      'Switchyard is off, but there is a problem: The host is not running.',
    );
    assert.equal(
      badgeFor({ enabled: true, problems: [problem, problem, problem] }).title,
      'Switchyard is on, but there is a problem: The host is not running. (and 2 more problems)',
    );
  });

  it('never shows a look that disagrees with the state', () => {
    for (const enabled of [true, false]) {
      for (const problems of [[], [problem]]) {
        const b = badgeFor({ enabled, problems });
        const expected = problems.length > 0 ? '!' : enabled ? 'ON' : 'OFF';
        assert.equal(b.text, expected);
        assert.ok(b.title.startsWith(enabled ? 'Switchyard is on' : 'Switchyard is off'));
      }
    }
  });
});

/** Runs a PAC script the way a browser does: a fresh context, FindProxyForURL(url, host). */
function findProxy(pac: string, url: string): string {
  const context = vm.createContext({});
  vm.runInContext(pac, context);
  const host = new URL(url).hostname;
  return vm.runInContext(
    `FindProxyForURL(${JSON.stringify(url)}, ${JSON.stringify(host)})`,
    context,
  ) as string;
}

describe('proxy plan', () => {
  it('clears the setting when off, keeps what is in force until the host has told its rules', () => {
    assert.deepEqual(proxyPlan(connected(false)), { kind: 'clear' });
    const restored = run([{ type: 'restored', remembered: { settings: parseSettings({}), enabled: true } }]);
    assert.deepEqual(proxyPlan(restored), { kind: 'keep' });
  });

  it('sends direct rules DIRECT and everything else to the host, failing closed', () => {
    const plan = proxyPlan(connected(true));
    assert.equal(plan.kind, 'pac');
    if (plan.kind !== 'pac') return;
    assert.equal(findProxy(plan.pac, 'http://www.direct.test/'), 'DIRECT');
    assert.equal(findProxy(plan.pac, 'http://proxied.test/'), 'SOCKS5 127.0.0.1:1080');
    // The default target is direct: an unmatched site skips the local hop too.
    assert.equal(findProxy(plan.pac, 'https://example.org/'), 'DIRECT');
  });

  it('adds a DIRECT fallback only when the user chose it', () => {
    const s = reduce(connected(true), {
      type: 'settings',
      settings: parseSettings({ failMode: 'fallback-direct' }),
    });
    const plan = proxyPlan(s);
    assert.equal(
      plan.kind === 'pac' && findProxy(plan.pac, 'http://proxied.test/'),
      'SOCKS5 127.0.0.1:1080; DIRECT',
    );
  });

  it('turned on while the host is away: everything to where it listens, nothing around it', () => {
    const s = run([
      {
        type: 'restored',
        remembered: {
          settings: parseSettings({}),
          enabled: false,
          endpoint: { host: '127.0.0.1', port: 4444 },
        },
      },
      { type: 'port.closed', error: HOST_NOT_FOUND, at: 1 },
      { type: 'toggled', enabled: true, pending: true },
    ]);
    const plan = proxyPlan(s);
    assert.equal(plan.kind, 'pac');
    assert.equal(
      plan.kind === 'pac' && findProxy(plan.pac, 'http://www.direct.test/'),
      'SOCKS5 127.0.0.1:4444',
    );
  });

  it('reports rules the PAC generator refuses instead of applying something else', () => {
    const bad = {
      ...config(),
      rules: [
        {
          id: 'x',
          enabled: true,
          match: { hosts: [{ type: 'domain', value: 'nope' }] },
          target: { kind: 'direct' },
        },
      ],
    } as Config;
    const s = reduce(connected(true), { type: 'config', config: bad, passwordSaved: {}, revision: 5 });
    assert.equal(proxyPlan(s).kind, 'invalid');
  });

  it('applies a plan once, and again only when it changes', async () => {
    const calls: string[] = [];
    let level = 'controllable_by_this_extension';
    const api: SettingApi = {
      get: async () => ({ levelOfControl: level, value: {} }),
      set: async (d) => {
        calls.push(`set ${JSON.stringify(d.value).includes('"mandatory":true') ? 'mandatory' : 'optional'}`);
        level = 'controlled_by_this_extension';
      },
      clear: async () => {
        calls.push('clear');
        level = 'controllable_by_this_extension';
      },
    };
    const setting = new ProxySetting(api);
    const plan = proxyPlan(connected(true));
    assert.deepEqual(await setting.apply(plan), { kind: 'applied', level: 'controlled_by_this_extension' });
    assert.deepEqual(await setting.apply(plan), { kind: 'unchanged' });
    assert.deepEqual(await setting.apply({ kind: 'keep' }), { kind: 'unchanged' });
    assert.deepEqual(await setting.apply({ kind: 'clear' }), {
      kind: 'applied',
      level: 'controllable_by_this_extension',
    });
    assert.deepEqual(await setting.apply(plan, false), {
      kind: 'applied',
      level: 'controlled_by_this_extension',
    });
    assert.deepEqual(calls, ['set mandatory', 'clear', 'set mandatory']);
    const failing = new ProxySetting({ ...api, set: async () => Promise.reject(new Error('denied')) });
    assert.deepEqual(await failing.apply(plan), { kind: 'failed', message: 'denied' });
  });
});

describe("the popup's one-click rule", () => {
  it('is a domain pattern for the host without www., put first', () => {
    const rules = config().rules;
    const { rules: next, ruleId } = withSiteRule(rules, 'https://www.Example.com/path?q=1', {
      kind: 'direct',
    });
    assert.equal(ruleId, 'site-example.com');
    assert.deepEqual(next[0], {
      id: 'site-example.com',
      enabled: true,
      name: '*.example.com -> direct (from the popup)',
      match: { hosts: [{ type: 'domain', value: '*.example.com' }] },
      target: { kind: 'direct' },
    });
    assert.deepEqual(next.slice(1), rules);
  });

  it('replaces its own earlier rule for the same site instead of stacking another', () => {
    const first = withSiteRule(config().rules, 'news.example.com', { kind: 'direct' });
    const again = withSiteRule(first.rules, 'news.example.com', { kind: 'route', routeId: 'abroad' });
    assert.equal(again.rules.length, first.rules.length);
    assert.deepEqual(again.rules[0]?.target, { kind: 'route', routeId: 'abroad' });
    assert.equal(again.rules[0]?.name, '*.news.example.com -> route abroad (from the popup)');
  });

  it('matches an address by ips, and refuses what has no host', () => {
    assert.deepEqual(withSiteRule([], 'http://192.168.1.5:8080/', { kind: 'block' }).rules[0]?.match, {
      ips: ['192.168.1.5'],
    });
    assert.deepEqual(withSiteRule([], 'http://[2001:db8::1]/', { kind: 'block' }).rules[0]?.match, {
      ips: ['2001:db8::1'],
    });
    assert.deepEqual(withSiteRule([], '::1', { kind: 'direct' }).rules[0]?.match, { ips: ['::1'] });
    assert.throws(() => withSiteRule([], 'about:blank', { kind: 'direct' }), SiteRuleError);
    assert.throws(() => withSiteRule([], 'http://', { kind: 'direct' }), SiteRuleError);
  });

  it('takes hosts from URLs and bare names alike', () => {
    assert.equal(hostOf('proxied.test:8080'), 'proxied.test');
    assert.equal(hostOf('HTTPS://WWW.Example.COM./'), 'www.example.com');
    assert.equal(siteDomain('www.example.com'), 'example.com');
    assert.equal(siteDomain('www'), 'www');
  });
});

describe('what storage keeps', () => {
  it('keeps known fields only, so nothing else (a password) can ride along', () => {
    const parsed = parseRemembered({
      settings: {
        failMode: 'fallback-direct',
        toolbarClick: 'toggle',
        webrtcProtection: true,
        password: 'x',
      },
      enabled: true,
      endpoint: { host: '127.0.0.1', port: 1080, password: 'y' },
      password: 'z',
    });
    assert.deepEqual(parsed, {
      settings: { failMode: 'fallback-direct', toolbarClick: 'toggle', webrtcProtection: true },
      enabled: true,
      endpoint: { host: '127.0.0.1', port: 1080 },
    });
    assert.equal(JSON.stringify(rememberedOf(connected())).includes('password'), false);
    assert.equal(STORAGE_KEY, 'switchyard.background');
  });

  it('falls back to defaults for anything malformed', () => {
    assert.deepEqual(parseRemembered('nonsense'), {
      settings: { failMode: 'fail-closed', toolbarClick: 'popup', webrtcProtection: false },
      enabled: false,
    });
    assert.deepEqual(parseSettings({ failMode: 'sometimes', toolbarClick: 1 }).failMode, 'fail-closed');
    assert.equal(parseRemembered({ endpoint: { host: 'x', port: 70000 } }).endpoint, undefined);
  });
});

/** A native port and timers under the test's control. */
function harness() {
  const sent: Record<string, unknown>[] = [];
  const events: ConnectionEvent[] = [];
  const timers: { at: number; fn: () => void; id: number }[] = [];
  let clock = 0;
  let nextTimer = 1;
  let lastError: string | undefined;
  let opened = 0;
  let messageListener: ((m: unknown) => void) | undefined;
  let disconnectListener: ((p: NativePort) => void) | undefined;
  const port: NativePort = {
    postMessage: (m) => sent.push(m as Record<string, unknown>),
    disconnect: () => undefined,
    onMessage: {
      addListener: (l) => {
        messageListener = l;
      },
    },
    onDisconnect: {
      addListener: (l) => {
        disconnectListener = l;
      },
    },
  };
  const fakeTimers: Timers = {
    setTimeout: (fn, ms) => {
      const id = nextTimer++;
      timers.push({ at: clock + ms, fn, id });
      return id;
    },
    clearTimeout: (id) => {
      const i = timers.findIndex((t) => t.id === id);
      if (i >= 0) timers.splice(i, 1);
    },
  };
  const connection = new HostConnection({
    connect: () => {
      opened++;
      return port;
    },
    lastError: () => lastError,
    hello: { client: 'chrome', extensionVersion: '0.1.0' },
    onChange: (e) => events.push(e),
    timers: fakeTimers,
  });
  const flush = () => new Promise((resolve) => setImmediate(resolve));
  return {
    connection,
    sent,
    events,
    opened: () => opened,
    reply: (message: unknown) => messageListener?.(message),
    drop: (error: string) => {
      lastError = error;
      disconnectListener?.(port);
      lastError = undefined;
    },
    /** Runs the timers due within `ms`, in order; returns the delays they were set for. */
    advance: async (ms: number) => {
      const until = clock + ms;
      for (;;) {
        timers.sort((a, b) => a.at - b.at);
        const next = timers[0];
        if (!next || next.at > until) break;
        timers.shift();
        clock = next.at;
        next.fn();
        await flush();
      }
      clock = until;
    },
    pendingDelays: () => timers.map((t) => t.at - clock),
    flush,
  };
}

describe('the native port', () => {
  it('says hello, then matches replies to requests by id', async () => {
    const h = harness();
    h.connection.start();
    assert.deepEqual(h.events, [{ type: 'connecting' }]);
    assert.deepEqual(h.sent[0], { client: 'chrome', extensionVersion: '0.1.0', v: 1, id: 1, type: 'hello' });
    h.reply({ v: 1, id: 1, ok: true, result: HELLO });
    await h.flush();
    assert.deepEqual(h.events[1], { type: 'ready', hello: HELLO });
    assert.equal(h.connection.isReady, true);

    const a = h.connection.request('status', {});
    const b = h.connection.request('route', { target: 'proxied.test' });
    assert.deepEqual(
      h.sent.slice(1).map((m) => [m.id, m.type]),
      [
        [2, 'status'],
        [3, 'route'],
      ],
    );
    h.reply({
      v: 1,
      id: 3,
      ok: false,
      error: { code: 'BAD_MESSAGE', message: 'target: no', issues: [{ path: 'target', message: 'no' }] },
    });
    h.reply({ v: 1, id: 2, ok: true, result: status() });
    assert.deepEqual(await a, status());
    await assert.rejects(
      b,
      (e: unknown) => e instanceof HostRequestError && e.code === 'BAD_MESSAGE' && e.issues?.length === 1,
    );
    h.reply({ v: 1, event: 'config', data: { revision: 2, enabled: true } });
    assert.deepEqual(h.events.at(-1), {
      type: 'event',
      event: { v: 1, event: 'config', data: { revision: 2, enabled: true } },
    });
    h.reply('garbage');
    h.reply({ v: 2, id: 9, ok: true });
  });

  it('times requests out', async () => {
    const h = harness();
    h.connection.start();
    h.reply({ v: 1, id: 1, ok: true, result: HELLO });
    await h.flush();
    const slow = assert.rejects(
      h.connection.request('config.get', {}, 1000),
      (e: unknown) => e instanceof HostRequestError && e.code === 'TIMEOUT',
    );
    await h.advance(1000);
    await slow;
  });

  it('tells a missing host by the browser error and retries with backoff up to 30 s', async () => {
    const h = harness();
    h.connection.start();
    const pending = h.connection.request('status', {});
    h.drop(HOST_NOT_FOUND);
    await assert.rejects(pending, (e: unknown) => e instanceof HostRequestError && e.code === 'DISCONNECTED');
    assert.deepEqual(h.events.at(-1), { type: 'closed', error: HOST_NOT_FOUND });
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      delays.push(h.pendingDelays()[0]!);
      await h.advance(h.pendingDelays()[0]!);
      h.drop(HOST_NOT_FOUND);
    }
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    assert.equal(BACKOFF_MAX_MS, 30000);
    assert.equal(h.opened(), 10);
    // A user's "Reconnect" does not wait out the backoff.
    h.connection.reconnectNow();
    assert.equal(h.opened(), 11);
  });

  it('treats an unreachable service as down and asks again, through the same port', async () => {
    const h = harness();
    h.connection.start();
    h.reply({
      v: 1,
      id: 1,
      ok: false,
      error: { code: 'UNAVAILABLE', message: 'could not start the switchyard service' },
    });
    await h.flush();
    assert.deepEqual(h.events.at(-1), {
      type: 'service-down',
      error: 'could not start the switchyard service',
    });
    await h.advance(500);
    assert.equal(h.sent.at(-1)?.type, 'hello');
    assert.equal(h.opened(), 1);
    h.reply({ v: 1, id: h.sent.at(-1)?.id, ok: true, result: HELLO });
    await h.flush();
    assert.equal(h.events.at(-1)?.type, 'ready');
    // The bridge's 'service' event: the service went away behind it.
    h.reply({ v: 1, event: 'service', data: { state: 'disconnected' } });
    assert.deepEqual(h.events.at(-1), { type: 'service-down', error: 'the service stopped' });
    assert.equal(h.connection.isReady, false);
  });

  it('refuses requests while no port is open', async () => {
    const h = harness();
    await assert.rejects(
      h.connection.request('status', {}),
      (e: unknown) => e instanceof HostRequestError && e.code === 'DISCONNECTED',
    );
  });
});
