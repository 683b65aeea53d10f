import browser from 'webextension-polyfill';

// The native port to the host and the browser proxy settings come in a later change; for now
// the worker only owns the on/off flag, so the popup and the shortcut already agree on it.
// Listeners are registered at top level: an MV3 worker that wakes for an event only gets it
// if the listener was added synchronously during startup.

browser.runtime.onInstalled.addListener(({ reason, previousVersion }) => {
  console.info('Switchyard installed:', reason, previousVersion ?? '');
});

browser.commands.onCommand.addListener(async (command) => {
  if (command !== 'toggle-proxy') return;
  const { enabled } = await browser.storage.local.get('enabled');
  await browser.storage.local.set({ enabled: enabled !== true });
});
