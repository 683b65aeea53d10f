/** @jsxRuntime automatic @jsxImportSource preact */
// (The pragma lets tsx run this file under the root tsconfig, which sets no JSX options.)

export interface ToggleProps {
  readonly checked: boolean;
  /** What turns on and off, for assistive technology: the visible text is only On/Off. */
  readonly label: string;
  readonly disabled?: boolean;
  readonly onChange: (checked: boolean) => void;
  readonly id?: string;
}

export function Toggle({ checked, label, disabled = false, onChange, id }: ToggleProps) {
  return (
    <button
      id={id}
      type="button"
      role="switch"
      class="toggle"
      aria-checked={checked}
      aria-label={label}
      disabled={disabled}
      onClick={() => onChange(!checked)}
    >
      <span class="toggle-track" aria-hidden="true">
        <span class="toggle-knob" />
      </span>
      <span class="toggle-text" aria-hidden="true">
        {checked ? 'On' : 'Off'}
      </span>
    </button>
  );
}
