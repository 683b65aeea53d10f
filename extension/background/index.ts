/**
 * The service worker's entry. Every listener is added here, synchronously at the top level:
 * an MV3 worker woken by an event only receives it if its listener was registered during that
 * start. The listeners hand over to the one Background, which waits for its own start (reading
 * storage) where it needs to.
 */
import browser, { type Events, type Runtime } from 'webextension-polyfill';
import { Background } from './controller.ts';
import { handleConnect, handleMessage, type PageOrigin } from './page-api.ts';
import type { ProxyErrorDetails } from './proxy-control.ts';
import type { UiState } from '../shared/ui-protocol.ts';

const background = new Background();
const origin: PageOrigin = { id: browser.runtime.id, base: browser.runtime.getURL('') };

browser.runtime.onInstalled.addListener(({ reason, previousVersion }) => {
  console.info('Switchyard installed:', reason, previousVersion ?? '');
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

browser.proxy.settings.onChange.addListener((details) =>
  background.onProxySettingChange(details.levelOfControl),
);

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
