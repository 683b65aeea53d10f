/**
 * The background's entry: Chrome's service worker, Firefox's event page. Every listener is
 * added here, synchronously at the top level: a background woken by an event only receives it
 * if its listener was registered during that start. The listeners hand over to the one
 * Background, which waits for its own start (reading storage) where it needs to.
 */
import browser, { type Events, type Runtime } from 'webextension-polyfill';
import { Background } from './controller.ts';
import { handleConnect, handleMessage, type PageOrigin } from './page-api.ts';
import type { ProxyInfo, RequestDetails } from './firefox-routing.ts';
import type { ProxyErrorDetails } from './proxy-control.ts';
import type { UiState } from '../shared/ui-protocol.ts';

// Firefox's proxy.onRequest, which the polyfill's types do not describe with a filter.
interface RequestEvent {
  addListener(
    listener: (details: RequestDetails) => Promise<readonly ProxyInfo[] | undefined>,
    filter: { urls: string[] },
  ): void;
}
const onRequest = (browser.proxy as unknown as { onRequest?: RequestEvent }).onRequest;

const background = new Background({ routeRequests: onRequest !== undefined });
const origin: PageOrigin = { id: browser.runtime.id, base: browser.runtime.getURL('') };

if (onRequest !== undefined) {
  // Every URL: with no answer from us a request would take the browser's own proxy settings.
  onRequest.addListener((details) => background.proxyForRequest(details), { urls: ['<all_urls>'] });
}

browser.runtime.onInstalled.addListener((details) => {
  console.info('Switchyard installed:', details.reason, details.previousVersion ?? '');
  // Firefox, temporary add-ons only (about:debugging, web-ext, the end-to-end tests): WebDriver
  // BiDi cannot open moz-extension:// pages, so the extension opens its popup page itself.
  if ((details as { temporary?: boolean }).temporary === true && details.reason === 'install') {
    const popup = browser.runtime.getManifest().action?.default_popup;
    if (popup) void browser.tabs.create({ url: browser.runtime.getURL(popup) }).catch(() => undefined);
  }
});

browser.runtime.onMessage.addListener((message: unknown, sender: Runtime.MessageSender) =>
  handleMessage(background, origin, message, sender),
);
browser.runtime.onConnect.addListener((port) => handleConnect(background, origin, port));

browser.commands.onCommand.addListener((command) => {
  void background
    .handleCommand(command)
    .catch((error: unknown) => console.warn('Switchyard: toggle failed:', error));
});

browser.action.onClicked.addListener(() => {
  void background
    .onToolbarClicked()
    .catch((error: unknown) => console.warn('Switchyard: toggle failed:', error));
});

browser.contextMenus.onClicked.addListener((info, tab) => {
  void background
    .onMenuClicked(info.menuItemId, tab?.url)
    .catch((error: unknown) => console.warn('Switchyard:', error));
});

browser.permissions.onRemoved.addListener((removed) =>
  background.onPermissionRemoved(removed.permissions ?? []),
);

// Chrome names it onProxyError and passes {error, details, fatal}; the polyfill's types only
// know Firefox's onError. Whichever exists is used.
const proxyEvents = browser.proxy as unknown as {
  onProxyError?: Events.Event<(details: ProxyErrorDetails) => void>;
  onError?: Events.Event<(details: ProxyErrorDetails) => void>;
};
(proxyEvents.onProxyError ?? proxyEvents.onError)?.addListener((details) => background.onProxyError(details));

// Chrome only: Firefox's setting has no onChange, and it is not what routes there anyway.
if (onRequest === undefined) {
  browser.proxy.settings.onChange.addListener((details) =>
    background.onProxySettingChange(details.levelOfControl),
  );
}

// For the end-to-end tests: what the keyboard shortcut does, and the state a page would get.
// Nothing here that a page of ours cannot already do.
interface TestHooks {
  handleCommand(command: string): Promise<UiState | undefined>;
  getState(): UiState;
}
(globalThis as typeof globalThis & { switchyardTest?: TestHooks }).switchyardTest = {
  handleCommand: (command) => background.handleCommand(command),
  getState: () => background.uiState(),
};

void background
  .start()
  .catch((error: unknown) => console.error('Switchyard: the background failed to start:', error));
