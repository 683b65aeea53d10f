/**
 * The background's side of extension/shared/ui-protocol.ts: UiRequests from the popup and
 * options pages by runtime.sendMessage, answered with a UiResponse, and the UI port each open
 * page keeps for state and log pushes. Only our own pages are answered: a request can save a
 * password or rewrite the config.
 */
import type { Runtime } from 'webextension-polyfill';
import type { RuleTarget } from '../../shared/rules/types.ts';
import { UI_PORT_NAME, type UiRequest, type UiResponse, type UiResultMap } from '../shared/ui-protocol.ts';
import { type Background, uiErrorOf } from './controller.ts';

const UI_REQUEST_TYPES: ReadonlySet<string> = new Set<UiRequest['type']>([
  'state.get',
  'toggle',
  'host.reconnect',
  'host.request',
  'site.info',
  'site.addRule',
  'settings.set',
  'log.recent',
]);

export interface PageOrigin {
  /** runtime.id */
  readonly id: string;
  /** runtime.getURL(''): 'chrome-extension://<id>/' */
  readonly base: string;
}

/** Our own extension pages only: not content scripts (we have none), not other extensions. */
export function isOwnPage(sender: Runtime.MessageSender | undefined, origin: PageOrigin): boolean {
  if (sender === undefined || sender.id !== origin.id) return false;
  return typeof sender.url === 'string' && sender.url.startsWith(origin.base);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isUiRequest(message: unknown): message is UiRequest {
  return isRecord(message) && typeof message.type === 'string' && UI_REQUEST_TYPES.has(message.type);
}

function isTarget(value: unknown): value is RuleTarget {
  if (!isRecord(value)) return false;
  if (value.kind === 'direct' || value.kind === 'block') return true;
  return value.kind === 'route' && typeof value.routeId === 'string';
}

class BadRequest extends Error {
  override readonly name = 'BadRequest';
}

async function answer(background: Background, request: UiRequest): Promise<UiResultMap[UiRequest['type']]> {
  switch (request.type) {
    case 'state.get':
      await background.ready();
      return background.uiState();
    case 'toggle':
      if (request.enabled !== undefined && typeof request.enabled !== 'boolean') {
        throw new BadRequest('enabled must be true or false');
      }
      return background.toggle(request.enabled);
    case 'host.reconnect':
      return background.reconnect();
    case 'host.request':
      if (
        !isRecord(request.request) ||
        typeof request.request.type !== 'string' ||
        !isRecord(request.request.params)
      ) {
        throw new BadRequest('request must be { type, params } of the host protocol');
      }
      return background.hostRequest(request.request);
    case 'site.info':
      if (typeof request.url !== 'string') throw new BadRequest('url must be a string');
      return background.siteInfo(request.url);
    case 'site.addRule':
      if (typeof request.host !== 'string' || !isTarget(request.target)) {
        throw new BadRequest(
          "host must be a string and target { kind: 'direct' | 'block' | 'route', routeId? }",
        );
      }
      return background.addSiteRule(request.host, request.target);
    case 'settings.set':
      if (!isRecord(request.settings)) throw new BadRequest('settings must be an object');
      return background.setSettings(request.settings);
    case 'log.recent':
      await background.ready();
      return background.recentLog(
        typeof request.host === 'string' ? request.host : undefined,
        typeof request.limit === 'number' ? request.limit : undefined,
      );
  }
}

/**
 * The runtime.onMessage listener: a Promise of the UiResponse for our pages' UiRequests, and
 * undefined (not ours to answer) for anything else.
 */
export function handleMessage(
  background: Background,
  origin: PageOrigin,
  message: unknown,
  sender: Runtime.MessageSender,
): Promise<UiResponse<UiRequest['type']>> | undefined {
  if (!isOwnPage(sender, origin) || !isUiRequest(message)) return undefined;
  return answer(background, message).then(
    (result) => ({ ok: true, result }),
    (error: unknown) => ({
      ok: false,
      error: error instanceof BadRequest ? { code: 'BAD_REQUEST', message: error.message } : uiErrorOf(error),
    }),
  );
}

/** The runtime.onConnect listener: a page's UI port gets the state now and every change after. */
export function handleConnect(background: Background, origin: PageOrigin, port: Runtime.Port): void {
  if (port.name !== UI_PORT_NAME || !isOwnPage(port.sender, origin)) return;
  void background.ready().then(() => background.addUiPort(port));
}
