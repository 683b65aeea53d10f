/** @jsxRuntime automatic @jsxImportSource preact */
import type { Problem } from '../shared/ui-protocol.ts';

export interface ProblemListProps {
  readonly problems: readonly Problem[];
  readonly title?: string;
}

/** Each problem with what to do about it, which is the part people act on. */
export function ProblemList({ problems, title }: ProblemListProps) {
  if (problems.length === 0) return null;
  return (
    <section class="problems" aria-label={title ?? 'Problems'}>
      {title && <h2>{title}</h2>}
      <ul>
        {problems.map((problem) => (
          <li key={`${problem.kind}-${problem.at}-${problem.message}`} class="problem">
            <p class="problem-message">{problem.message}</p>
            {problem.advice && <p class="advice">{problem.advice}</p>}
          </li>
        ))}
      </ul>
    </section>
  );
}
