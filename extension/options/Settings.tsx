/** @jsxRuntime automatic @jsxImportSource preact */
import { useState } from 'preact/hooks';
import type { BrowserSettings, UiState } from '../shared/ui-protocol.ts';
import { type BackgroundClient, errorMessage } from '../ui/background-client.ts';
import { describedBy, Field } from '../ui/Field.tsx';
import type { ConfigEditor } from './use-config.ts';
import { Outcome } from '../ui/Messages.tsx';

export interface SettingsProps {
  readonly client: BackgroundClient;
  readonly state: UiState;
  readonly setState: (state: UiState) => void;
  readonly editor: ConfigEditor;
  readonly requestPermission?: (permission: 'privacy') => Promise<boolean>;
}

export function Settings({ client, state, setState, editor, requestPermission }: SettingsProps) {
  const { settings } = state;
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');

  const apply = async (change: Partial<BrowserSettings>) => {
    setError(null);
    try {
      setState(await client.send({ type: 'settings.set', settings: change }));
      setNotice('Saved.');
    } catch (e) {
      setError(`Not saved: ${errorMessage(e)}`);
    }
  };

  const setWebrtc = async (on: boolean) => {
    if (on && requestPermission) {
      // Asked here, in the click: browsers grant optional permissions only from a user gesture.
      let granted = false;
      try {
        granted = await requestPermission('privacy');
      } catch (e) {
        setError(`Could not ask for the permission: ${errorMessage(e)}`);
        return;
      }
      if (!granted) {
        setError('WebRTC protection needs the "privacy" permission, which was not granted: it stays off.');
        return;
      }
    }
    await apply({ webrtcProtection: on });
  };

  return (
    <section aria-labelledby="settings-title">
      <h2 id="settings-title">Settings</h2>
      <Outcome notice={notice} error={error} />
      {/* Keyed by the saved port: a change made elsewhere (the CLI, another page) starts the field afresh. */}
      <ListenPort
        key={editor.config?.listen.port ?? 'none'}
        editor={editor}
        onSaved={() => setNotice('Saved the listen port.')}
      />

      <fieldset class="choice">
        <legend>When the host is not running</legend>
        <label>
          <input
            type="radio"
            name="fail-mode"
            value="fail-closed"
            checked={settings.failMode === 'fail-closed'}
            onChange={() => void apply({ failMode: 'fail-closed' })}
          />
          <span>
            Fail closed: sites that should go through a proxy do not load
            <span class="hint">Nothing leaks out directly; you see an error instead.</span>
          </span>
        </label>
        <label>
          <input
            type="radio"
            name="fail-mode"
            value="fallback-direct"
            checked={settings.failMode === 'fallback-direct'}
            onChange={() => void apply({ failMode: 'fallback-direct' })}
          />
          <span>
            Fall back: those sites go direct
            <span class="hint">
              They keep working, but without the proxy: your address and traffic are visible.
            </span>
          </span>
        </label>
      </fieldset>

      <fieldset class="choice">
        <legend>Clicking the toolbar button</legend>
        <label>
          <input
            type="radio"
            name="toolbar-click"
            value="popup"
            checked={settings.toolbarClick === 'popup'}
            onChange={() => void apply({ toolbarClick: 'popup' })}
          />
          <span>Opens the popup</span>
        </label>
        <label>
          <input
            type="radio"
            name="toolbar-click"
            value="toggle"
            checked={settings.toolbarClick === 'toggle'}
            onChange={() => void apply({ toolbarClick: 'toggle' })}
          />
          <span>
            Turns Switchyard on or off
            <span class="hint">The popup stays available from the button's right-click menu.</span>
          </span>
        </label>
      </fieldset>

      <fieldset class="choice">
        <legend>WebRTC</legend>
        <label>
          <input
            type="checkbox"
            checked={settings.webrtcProtection}
            onChange={(e) => void setWebrtc(e.currentTarget.checked)}
          />
          <span>
            Protect against WebRTC leaks
            <span class="hint">
              Stops video calls and other WebRTC traffic from revealing your real address around the proxy.
              Some call sites may need a proxy that carries UDP. Asks for the browser's "privacy" permission.
            </span>
          </span>
        </label>
      </fieldset>
    </section>
  );
}

function ListenPort({ editor, onSaved }: { readonly editor: ConfigEditor; readonly onSaved: () => void }) {
  const current = editor.config?.listen.port;
  const [value, setValue] = useState(current === undefined ? '' : String(current));
  const [errors, setErrors] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const config = editor.config;
    if (!config) return;
    const port = Number(value);
    if (value.trim() === '' || !Number.isInteger(port) || port < 1 || port > 65535) {
      setErrors(['The port must be a whole number from 1 to 65535.']);
      return;
    }
    setErrors([]);
    setBusy(true);
    try {
      await editor.patch({ listen: { ...config.listen, port } });
      onSaved();
    } catch (e) {
      setErrors([`Not saved: ${errorMessage(e)}`]);
    } finally {
      setBusy(false);
    }
  };

  const disabled = editor.config === undefined;
  return (
    <form class="form-inline" onSubmit={submit} noValidate>
      <Field
        id="listen-port"
        label="Listen port"
        errors={errors}
        hint={
          disabled
            ? 'Part of the host’s configuration: available once the host is running.'
            : `The host accepts SOCKS connections on ${editor.config?.listen.host ?? '127.0.0.1'}:${current}. Other apps (curl, git, ssh) can use it too.`
        }
      >
        <div class="inline-field">
          <input
            id="listen-port"
            type="number"
            min={1}
            max={65535}
            value={value}
            disabled={disabled}
            onInput={(e) => setValue(e.currentTarget.value)}
            {...describedBy('listen-port', errors, true)}
          />
          <button type="submit" class="button" disabled={disabled || busy || value === String(current)}>
            Save
          </button>
        </div>
      </Field>
    </form>
  );
}
