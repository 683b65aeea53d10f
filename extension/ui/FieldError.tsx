/** @jsxRuntime automatic @jsxImportSource preact */

export interface FieldErrorProps {
  /** Referenced by the field's aria-describedby. */
  readonly id: string;
  readonly messages: readonly string[];
}

export function FieldError({ id, messages }: FieldErrorProps) {
  if (messages.length === 0) return null;
  return (
    <div id={id} class="field-error">
      {messages.map((message) => (
        <p key={message}>{message}</p>
      ))}
    </div>
  );
}
