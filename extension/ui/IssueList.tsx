/** @jsxRuntime automatic @jsxImportSource preact */

export interface Issue {
  readonly path: string;
  readonly message: string;
}

export interface IssueListProps {
  readonly issues: readonly Issue[];
  readonly title: string;
}

/** Validation problems by field path, so a hand-edited file can be fixed line by line. */
export function IssueList({ issues, title }: IssueListProps) {
  if (issues.length === 0) return null;
  return (
    <div class="issues" role="alert">
      <p class="issues-title">{title}</p>
      <ul>
        {issues.map((issue, i) => (
          // Issues are a static list, and paths may repeat: position is the identity.
          <li key={i}>
            <code class="issue-path">{issue.path}</code> <span class="issue-message">{issue.message}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}
