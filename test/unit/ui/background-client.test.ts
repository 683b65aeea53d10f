import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BackgroundError,
  createBackgroundClient,
  type PortLike,
  type RuntimeLike,
} from '../../../extension/ui/background-client.ts';
import { UI_PORT_NAME, type UiPush } from '../../../extension/shared/ui-protocol.ts';
import { makeState } from './fake-client.ts';

class FakePort implements PortLike {
  readonly messageListeners: ((message: unknown) => void)[] = [];
  readonly disconnectListeners: (() => void)[] = [];
  disconnected = false;
  readonly onMessage = {
    addListener: (cb: (message: unknown) => void) => void this.messageListeners.push(cb),
  };
  readonly onDisconnect = { addListener: (cb: () => void) => void this.disconnectListeners.push(cb) };
  postMessage(): void {}
  disconnect(): void {
    this.disconnected = true;
  }
  deliver(message: unknown): void {
    for (const cb of this.messageListeners) cb(message);
  }
  drop(): void {
    for (const cb of this.disconnectListeners) cb();
  }
}

class FakeRuntime implements RuntimeLike {
  readonly messages: unknown[] = [];
  readonly ports: { name: string; port: FakePort }[] = [];
  reply: (message: unknown) => Promise<unknown> = async () => ({ ok: true, result: makeState() });
  sendMessage(message: unknown): Promise<unknown> {
    this.messages.push(message);
    return this.reply(message);
  }
  connect(info: { name: string }): PortLike {
    const port = new FakePort();
    this.ports.push({ name: info.name, port });
    return port;
  }
}

describe('background client', () => {
  it('sends the request as is and unwraps { ok, result }', async () => {
    const runtime = new FakeRuntime();
    const client = createBackgroundClient(runtime);
    const state = await client.send({ type: 'state.get' });
    assert.deepEqual(state, makeState());
    assert.deepEqual(runtime.messages, [{ type: 'state.get' }]);
  });

  it('wraps host requests in host.request with { type, params }', async () => {
    const runtime = new FakeRuntime();
    runtime.reply = async () => ({ ok: true, result: { revision: 2, passwordSaved: {} } });
    const client = createBackgroundClient(runtime);
    const result = await client.host('config.patch', { patch: { rules: [] } });
    assert.deepEqual(result, { revision: 2, passwordSaved: {} });
    assert.deepEqual(runtime.messages, [
      { type: 'host.request', request: { type: 'config.patch', params: { patch: { rules: [] } } } },
    ]);
  });

  it('turns { ok: false } into a BackgroundError with the code and per-field issues', async () => {
    const runtime = new FakeRuntime();
    const issues = [{ path: 'listen.port', message: 'Too big' }];
    runtime.reply = async () => ({
      ok: false,
      error: { code: 'INVALID_CONFIG', message: 'bad config', issues },
    });
    const client = createBackgroundClient(runtime);
    await assert.rejects(client.host('config.patch', { patch: {} }), (error: unknown) => {
      assert.ok(error instanceof BackgroundError);
      assert.equal(error.code, 'INVALID_CONFIG');
      assert.equal(error.message, 'bad config');
      assert.deepEqual(error.issues, issues);
      return true;
    });
  });

  it('reports a background that does not answer, or answers nothing', async () => {
    const runtime = new FakeRuntime();
    const client = createBackgroundClient(runtime);
    runtime.reply = async () => undefined;
    await assert.rejects(client.send({ type: 'state.get' }), { code: 'UNAVAILABLE' });
    runtime.reply = async () => Promise.reject(new Error('Receiving end does not exist.'));
    await assert.rejects(client.send({ type: 'state.get' }), {
      code: 'UNAVAILABLE',
      message: "The extension's background did not answer: Receiving end does not exist.",
    });
  });

  it('opens one UI port for all subscribers, passes pushes on, and closes it with the last', () => {
    const runtime = new FakeRuntime();
    const client = createBackgroundClient(runtime);
    const a: UiPush[] = [];
    const b: UiPush[] = [];
    const offA = client.subscribe((p) => a.push(p));
    const offB = client.subscribe((p) => b.push(p));
    assert.equal(runtime.ports.length, 1);
    assert.equal(runtime.ports[0]?.name, UI_PORT_NAME);
    const port = runtime.ports[0]!.port;
    const push: UiPush = { type: 'log', events: [] };
    port.deliver(push);
    port.deliver({ type: 'something else' });
    assert.deepEqual(a, [push]);
    assert.deepEqual(b, [push]);
    offA();
    assert.equal(port.disconnected, false);
    offB();
    assert.equal(port.disconnected, true);
  });

  it('reconnects after the worker drops the port, and pushes a fresh state', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const runtime = new FakeRuntime();
    const client = createBackgroundClient(runtime);
    const pushes: UiPush[] = [];
    client.subscribe((p) => pushes.push(p));
    runtime.ports[0]!.port.drop();
    t.mock.timers.tick(500);
    assert.equal(runtime.ports.length, 2);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(pushes, [{ type: 'state', state: makeState() }]);
    assert.deepEqual(runtime.messages, [{ type: 'state.get' }]);
  });
});
