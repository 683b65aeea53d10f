import { useState } from 'preact/hooks';
import type { Config } from '../../shared/config/schema.ts';
import type { UiState } from '../shared/ui-protocol.ts';
import type { BackgroundClient } from '../ui/background-client.ts';

/** Whole top-level fields, as config.patch replaces them. */
export type ConfigEdit = Partial<Omit<Config, 'version'>>;

export interface ConfigEditor {
  /** The config as the page shows it: the host's, with this page's changes already applied. */
  readonly config: Config | undefined;
  readonly passwordSaved: Readonly<Record<string, boolean>>;
  /** Sends config.patch; rejects with a BackgroundError (its issues name the fields). */
  readonly patch: (edit: ConfigEdit) => Promise<void>;
  /** Records a credential.set / credential.delete until the background's state says the same. */
  readonly markPassword: (upstreamId: string, saved: boolean) => void;
}

interface Overlay {
  readonly config: Config;
  readonly passwordSaved: Readonly<Record<string, boolean>>;
  /** The state's revision when the change was made. */
  readonly base: number | undefined;
}

/**
 * Applies changes at once instead of waiting for the background to fetch and push the new
 * config (which for 10,000 rules is not instant), and so that a second click builds on the
 * first. Once the state's revision moves, the pushed config is the truth again.
 */
export function useConfig(client: BackgroundClient, state: UiState): ConfigEditor {
  const [overlay, setOverlay] = useState<Overlay | null>(null);
  const current = overlay !== null && overlay.base === state.revision ? overlay : null;
  const config = current?.config ?? state.config;
  const passwordSaved = current?.passwordSaved ?? state.passwordSaved;

  const patch = async (edit: ConfigEdit) => {
    if (!config) throw new Error('The host has not sent its configuration yet');
    const next: Config = { ...config, ...edit };
    setOverlay({ config: next, passwordSaved, base: state.revision });
    try {
      const result = await client.host('config.patch', { patch: edit });
      setOverlay((o) => (o === null ? o : { ...o, passwordSaved: result.passwordSaved }));
    } catch (error) {
      setOverlay(null);
      throw error;
    }
  };

  const markPassword = (upstreamId: string, saved: boolean) => {
    if (!config) return;
    setOverlay({ config, passwordSaved: { ...passwordSaved, [upstreamId]: saved }, base: state.revision });
  };

  return { config, passwordSaved, patch, markPassword };
}

/** The editor once the host's config has arrived: what the config tabs work with. */
export type LoadedConfigEditor = ConfigEditor & { readonly config: Config };
