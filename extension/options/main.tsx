/** @jsxRuntime automatic @jsxImportSource preact */
import { render } from 'preact';
import browser from 'webextension-polyfill';
import '../ui/styles.css';
import { createBackgroundClient } from '../ui/background-client.ts';
import { isTabId, Options } from './Options.tsx';

const root = document.getElementById('app');
if (!root) throw new Error('options: #app is missing from index.html');

const hash = location.hash.slice(1);
const requestPermission = (permission: 'privacy') =>
  browser.permissions.request({ permissions: [permission] });

render(
  <Options
    client={createBackgroundClient(browser.runtime)}
    initialTab={isTabId(hash) ? hash : undefined}
    onTabChange={(tab) => history.replaceState(null, '', `#${tab}`)}
    requestPermission={requestPermission}
  />,
  root,
);
