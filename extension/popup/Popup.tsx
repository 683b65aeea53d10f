import { useEffect, useState } from 'preact/hooks';
import browser, { type Storage } from 'webextension-polyfill';

export function Popup() {
  // null until storage answers, so the button never shows a state it has not read.
  const [enabled, setEnabled] = useState<boolean | null>(null);

  useEffect(() => {
    // The keyboard shortcut can flip the flag while the popup is open: follow storage, not clicks.
    const onChanged = (changes: Record<string, Storage.StorageChange>, area: string) => {
      const change = changes.enabled;
      if (area === 'local' && change) setEnabled(change.newValue === true);
    };
    browser.storage.onChanged.addListener(onChanged);
    void browser.storage.local.get('enabled').then(({ enabled }) => setEnabled(enabled === true));
    return () => browser.storage.onChanged.removeListener(onChanged);
  }, []);

  const toggle = () => {
    if (enabled === null) return;
    void browser.storage.local.set({ enabled: !enabled });
  };

  return (
    <main class="popup">
      <h1>Switchyard</h1>
      <button
        id="toggle"
        class="toggle"
        type="button"
        aria-pressed={enabled === true}
        disabled={enabled === null}
        onClick={toggle}
      >
        {enabled ? 'On' : 'Off'}
      </button>
    </main>
  );
}
