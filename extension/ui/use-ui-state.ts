import { useCallback, useEffect, useState } from 'preact/hooks';
import type { UiState } from '../shared/ui-protocol.ts';
import { type BackgroundClient, errorMessage } from './background-client.ts';

export interface UiStateHandle {
  readonly state: UiState | null;
  /** Why the first state.get failed, when it did. */
  readonly loadError: string | null;
  /** Take a newer state, such as the answer to toggle or settings.set. */
  readonly setState: (state: UiState) => void;
  readonly reload: () => void;
}

/** One state.get to render from, then whatever the background pushes. */
export function useUiState(client: BackgroundClient): UiStateHandle {
  const [state, setState] = useState<UiState | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let live = true;
    const unsubscribe = client.subscribe((push) => {
      if (push.type === 'state') setState(push.state);
    });
    client.send({ type: 'state.get' }).then(
      (fresh) => {
        if (!live) return;
        setLoadError(null);
        // A push that overtook the answer is at least as new: keep it.
        setState((current) => current ?? fresh);
      },
      (error: unknown) => {
        if (live) setLoadError(errorMessage(error));
      },
    );
    return () => {
      live = false;
      unsubscribe();
    };
  }, [client, attempt]);

  const reload = useCallback(() => setAttempt((n) => n + 1), []);
  return { state, loadError, setState, reload };
}
