/** @jsxRuntime automatic @jsxImportSource preact */
import { render } from 'preact';
import browser from 'webextension-polyfill';
import '../ui/styles.css';
import { createBackgroundClient } from '../ui/background-client.ts';
import { Popup } from './Popup.tsx';
import { activeTabUrl } from './tab-url.ts';

const root = document.getElementById('app');
if (!root) throw new Error('popup: #app is missing from index.html');

// Started before the first render, alongside state.get, so neither waits for the other.
// `index.html?url=<encoded URL>` describes that URL instead of the active tab: opened as a tab of
// its own (end-to-end tests, debugging), the popup's active tab would be the popup itself.
const tabUrl = activeTabUrl(location.search, async () => {
  const [tab] = await browser.tabs.query({ active: true, currentWindow: true });
  return tab?.url;
});

const openOptions = (tab?: string) => {
  if (tab === undefined) {
    void browser.runtime.openOptionsPage();
  } else {
    void browser.tabs.create({ url: browser.runtime.getURL(`extension/options/index.html#${tab}`) });
  }
  window.close();
};

render(
  <Popup client={createBackgroundClient(browser.runtime)} tabUrl={tabUrl} openOptions={openOptions} />,
  root,
);
