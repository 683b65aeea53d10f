/** @jsxRuntime automatic @jsxImportSource preact */
import type { ComponentChildren } from 'preact';
import { FieldError } from './FieldError.tsx';

export interface FieldProps {
  /** The control's id; its error and hint get `${id}-error` and `${id}-hint`. */
  readonly id: string;
  readonly label: string;
  readonly errors?: readonly string[];
  readonly hint?: ComponentChildren;
  readonly children: ComponentChildren;
}

/** Label, control, hint and errors, laid out the same everywhere. */
export function Field({ id, label, errors = [], hint, children }: FieldProps) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {children}
      {hint && (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      <FieldError id={`${id}-error`} messages={errors} />
    </div>
  );
}

/** aria attributes for a control inside Field: invalid state, and which texts describe it. */
export function describedBy(id: string, errors: readonly string[], hasHint = false) {
  const ids = [hasHint ? `${id}-hint` : '', errors.length > 0 ? `${id}-error` : ''].filter(Boolean).join(' ');
  return {
    'aria-invalid': errors.length > 0 ? true : undefined,
    'aria-describedby': ids === '' ? undefined : ids,
  };
}
