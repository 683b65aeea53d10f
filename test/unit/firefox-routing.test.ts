// Firefox's routing (extension/background/firefox-routing.ts): the proxy.onRequest answers made
// from the background state, with the same rules the host and Chrome's PAC use, plus the
// container rules only Firefox can apply and the route hint that tells the host about them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  RequestRouting,
  destinationOf,
  proxyInfoFor,
  routingPlan,
} from '../../extension/background/firefox-routing.ts';
import { type BackgroundState, initialState } from '../../extension/background/state.ts';
import { type ConfigInput, configSchema } from '../../shared/config/schema.ts';
import { parseRouteHint } from '../../shared/messages/route-hint.ts';

const WORK = 'firefox-container-1';

function config(extra: Partial<ConfigInput> = {}) {
  return configSchema.parse({
    version: 1,
    listen: { host: '127.0.0.1', port: 31080 },
    upstreams: [{ id: 'gw', type: 'socks5', host: 'gw.example', port: 1080 }],
    routes: [{ id: 'corp', hops: ['gw'] }],
    rules: [
      {
        id: 'work',
        name: 'Work container',
        enabled: true,
        match: { contexts: [WORK] },
        target: { kind: 'route', routeId: 'corp' },
      },
      {
        id: 'private-block',
        enabled: true,
        match: { hosts: [{ type: 'domain', value: '*.tracker.test' }], contexts: ['private'] },
        target: { kind: 'block' },
      },
      {
        id: 'direct',
        enabled: true,
        match: { hosts: [{ type: 'exact', value: 'direct.test' }] },
        target: { kind: 'direct' },
      },
      {
        id: 'intranet',
        enabled: true,
        match: { hosts: [{ type: 'domain', value: '*.corp.test' }] },
        target: { kind: 'route', routeId: 'corp' },
      },
    ],
    defaultTarget: { kind: 'direct' },
    ...extra,
  });
}

function on(extra: Partial<BackgroundState> = {}): BackgroundState {
  return {
    ...initialState(),
    enabled: true,
    config: config(),
    endpoint: { host: '127.0.0.1', port: 31080 },
    ...extra,
  };
}

const SOCKS = { type: 'socks', host: '127.0.0.1', port: 31080, proxyDNS: true } as const;

describe('Firefox routing (proxy.onRequest)', () => {
  it('off: no answer, so the browser keeps its own proxy settings', () => {
    assert.equal(
      proxyInfoFor(routingPlan({ ...on(), enabled: false }), { url: 'https://x.corp.test/' }),
      undefined,
    );
  });

  it('direct rules go DIRECT, everything else to the host with proxyDNS (fail-closed: nothing after it)', () => {
    const plan = routingPlan(on());
    assert.deepEqual(proxyInfoFor(plan, { url: 'http://direct.test:8080/' }), [{ type: 'direct' }]);
    assert.deepEqual(proxyInfoFor(plan, { url: 'https://www.corp.test/' }), [SOCKS]);
    // The default target is direct: the host is skipped.
    assert.deepEqual(proxyInfoFor(plan, { url: 'https://example.org/' }), [{ type: 'direct' }]);
  });

  it('fallback mode adds DIRECT after the host, which Firefox tries when the host is down', () => {
    const plan = routingPlan(on({ settings: { ...initialState().settings, failMode: 'fallback-direct' } }));
    assert.deepEqual(proxyInfoFor(plan, { url: 'https://www.corp.test/' }), [
      { ...SOCKS, failoverTimeout: 5 },
      { type: 'direct' },
    ]);
  });

  it('a container rule names its route to the host, which could not tell the container', () => {
    const plan = routingPlan(on());
    const answer = proxyInfoFor(plan, { url: 'http://direct.test/', cookieStoreId: WORK });
    assert.equal(answer?.length, 1);
    const proxy = answer![0]!;
    assert.ok(proxy.type === 'socks');
    assert.deepEqual(parseRouteHint(proxy.username ?? '', proxy.password ?? ''), {
      kind: 'route',
      routeId: 'corp',
      ruleId: 'work',
    });
    // The same site outside the container still goes direct.
    assert.deepEqual(proxyInfoFor(plan, { url: 'http://direct.test/', cookieStoreId: 'firefox-default' }), [
      { type: 'direct' },
    ]);
  });

  it('a private-window block rule is a block hint; plain rules carry no hint', () => {
    const plan = routingPlan(on());
    const blocked = proxyInfoFor(plan, { url: 'https://a.tracker.test/', incognito: true })![0]!;
    assert.ok(blocked.type === 'socks');
    assert.deepEqual(parseRouteHint(blocked.username ?? '', blocked.password ?? ''), {
      kind: 'block',
      ruleId: 'private-block',
    });
    const plain = proxyInfoFor(plan, { url: 'https://www.corp.test/', incognito: true })![0]!;
    assert.ok(plain.type === 'socks' && plain.username === undefined);
  });

  it('before the host has sent its rules, everything goes to it (nothing leaks around it)', () => {
    const plan = routingPlan(on({ config: undefined, endpoint: undefined }));
    assert.deepEqual(proxyInfoFor(plan, { url: 'http://direct.test/' }), [{ ...SOCKS, port: 1080 }]);
  });

  it('URLs the rules cannot judge go to the host', () => {
    const plan = routingPlan(on());
    assert.deepEqual(proxyInfoFor(plan, { url: 'gopher://direct.test/' }), [SOCKS]);
    assert.deepEqual(destinationOf('https://[2001:db8::1]/'), { host: '[2001:db8::1]', port: 443 });
    assert.deepEqual(destinationOf('wss://direct.test/'), { host: 'direct.test', port: 443 });
    assert.equal(destinationOf('about:blank'), undefined);
  });

  it('RequestRouting reports control the way the UI shows it for Chrome', () => {
    const routing = new RequestRouting();
    assert.equal(routing.level(), 'controllable_by_this_extension');
    assert.deepEqual(routing.apply(on()), { kind: 'applied', level: 'controlled_by_this_extension' });
    assert.deepEqual(routing.proxyFor({ url: 'https://www.corp.test/' }), [SOCKS]);
    assert.deepEqual(routing.apply({ ...on(), enabled: false }), {
      kind: 'applied',
      level: 'controllable_by_this_extension',
    });
  });
});
