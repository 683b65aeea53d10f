/** @jsxRuntime automatic @jsxImportSource preact */
import { useState } from 'preact/hooks';
import type { ProtocolIssue } from '../../shared/messages/protocol.ts';
import { type BackgroundClient, BackgroundError, errorMessage } from '../ui/background-client.ts';
import { CopyButton } from '../ui/CopyButton.tsx';
import { IssueList } from '../ui/IssueList.tsx';
import { exportConfig, type ImportResult, prepareImport } from './config-io.ts';
import type { LoadedConfigEditor } from './use-config.ts';
import { ErrorAlert } from '../ui/Messages.tsx';

export interface ImportExportProps {
  readonly client: BackgroundClient;
  readonly editor: LoadedConfigEditor;
}

export function ImportExport({ client, editor }: ImportExportProps) {
  return (
    <section aria-labelledby="io-title">
      <h2 id="io-title">Import & export</h2>
      <p class="muted">
        The whole configuration as one JSON file. Files never contain secrets: passwords stay in the
        credential store, and this host's inbound users stay here.
      </p>
      <Export editor={editor} />
      <Import client={client} editor={editor} />
    </section>
  );
}

function Export({ editor }: { readonly editor: LoadedConfigEditor }) {
  const [text, setText] = useState<string | null>(null);
  const download = () => {
    if (text === null) return;
    const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = 'switchyard-config.json';
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  return (
    <div class="card">
      <h3>Export</h3>
      <div class="button-row">
        <button type="button" class="button" onClick={() => setText(exportConfig(editor.config))}>
          Export configuration
        </button>
        {text !== null && (
          <>
            <button type="button" class="button button-primary" onClick={download}>
              Download switchyard-config.json
            </button>
            <CopyButton text={text} label="Copy JSON" />
          </>
        )}
      </div>
      {text !== null && (
        <>
          <label for="export-json" class="sr-only">
            Exported configuration
          </label>
          <textarea id="export-json" class="code" readOnly rows={10} value={text} />
        </>
      )}
    </div>
  );
}

function Import({ client, editor }: ImportExportProps) {
  const [text, setText] = useState('');
  const [checked, setChecked] = useState<ImportResult | null>(null);
  const [serverIssues, setServerIssues] = useState<readonly ProtocolIssue[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);

  const check = (value: string) => {
    setServerIssues([]);
    setError(null);
    setNotice('');
    setChecked(prepareImport(value, editor.config));
  };

  const onFile = async (event: Event) => {
    const file = (event.currentTarget as HTMLInputElement).files?.[0];
    if (!file) return;
    const value = await file.text();
    setText(value);
    check(value);
  };

  const replace = async () => {
    if (!checked?.ok) return;
    setBusy(true);
    try {
      await client.host('config.replace', { config: checked.config });
      setNotice(`Imported: ${checked.summary}.`);
      setChecked(null);
      setText('');
    } catch (e) {
      setError(`Nothing was changed: ${errorMessage(e)}`);
      if (e instanceof BackgroundError) setServerIssues(e.issues);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="card">
      <h3>Import</h3>
      <p class="muted small">
        Replaces the whole configuration. The file is checked first; nothing changes until you confirm.
      </p>
      <div class="field">
        <label for="import-file">JSON file</label>
        <input
          id="import-file"
          type="file"
          accept=".json,application/json"
          onChange={(e) => void onFile(e)}
        />
      </div>
      <div class="field">
        <label for="import-json">Or paste the JSON</label>
        <textarea
          id="import-json"
          class="code"
          rows={8}
          value={text}
          spellcheck={false}
          onInput={(e) => {
            setText(e.currentTarget.value);
            setChecked(null);
          }}
        />
      </div>
      <div class="button-row">
        <button type="button" class="button" disabled={text.trim() === ''} onClick={() => check(text)}>
          Check file
        </button>
      </div>
      <p class="confirm" role="status">
        {notice}
      </p>
      {checked && !checked.ok && (
        <IssueList
          issues={checked.issues}
          title="This file cannot be imported; nothing was changed. Fix these fields:"
        />
      )}
      {checked?.ok && (
        <div class="callout">
          <p>
            Valid: {checked.summary}. Importing replaces the current configuration (
            {editor.config.rules.length.toLocaleString('en')} rules now).
          </p>
          <button type="button" class="button button-primary" disabled={busy} onClick={() => void replace()}>
            {busy ? 'Importing…' : 'Replace configuration'}
          </button>
        </div>
      )}
      <ErrorAlert error={error} />
      <IssueList issues={serverIssues} title="The host refused it:" />
    </div>
  );
}
