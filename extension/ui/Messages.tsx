/** @jsxRuntime automatic @jsxImportSource preact */

export interface ErrorAlertProps {
  /** Nothing is shown without one. */
  readonly error: string | null;
}

/** What went wrong, announced as an alert. */
export function ErrorAlert({ error }: ErrorAlertProps) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error}
    </p>
  );
}

export interface OutcomeProps extends ErrorAlertProps {
  /** What was just done; the status line is always there, so that a change to it is announced. */
  readonly notice: string;
}

/** The outcome of the last action on a page: what was done, or what went wrong. */
export function Outcome({ notice, error }: OutcomeProps) {
  return (
    <>
      <p class="confirm" role="status">
        {notice}
      </p>
      <ErrorAlert error={error} />
    </>
  );
}

export interface BackgroundDownProps {
  /** Why the state could not be loaded. */
  readonly error: string;
  readonly onRetry: () => void;
}

/** The extension's own background did not answer: nothing else on the page can work. */
export function BackgroundDown({ error, onRetry }: BackgroundDownProps) {
  return (
    <div class="callout callout-bad" role="alert">
      <p>The extension's background is not answering: {error}</p>
      <button type="button" class="button" onClick={onRetry}>
        Try again
      </button>
    </div>
  );
}
