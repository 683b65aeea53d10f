/** @jsxRuntime automatic @jsxImportSource preact */

export interface Hop {
  readonly name: string;
  /** Type and address, as a quieter second line. */
  readonly detail?: string;
}

export interface HopListProps {
  readonly hops: readonly Hop[];
  /** What the last hop connects to, e.g. the site. */
  readonly destination?: string;
}

/** A chain in the order traffic takes it: each hop by name, then the site. */
export function HopList({ hops, destination }: HopListProps) {
  return (
    <ol class="hops" aria-label="Hops, in order">
      {hops.map((hop, i) => (
        // Hops can repeat (a route may pass the same upstream twice): position is the identity.
        <li key={i} class="hop">
          {i > 0 && (
            <span class="hop-arrow" aria-hidden="true">
              →
            </span>
          )}
          <span class="hop-box">
            <span class="hop-name">{hop.name}</span>
            {hop.detail && <span class="hop-detail">{hop.detail}</span>}
          </span>
        </li>
      ))}
      {destination && (
        <li class="hop hop-destination">
          <span class="hop-arrow" aria-hidden="true">
            →
          </span>
          <span class="hop-box">
            <span class="hop-name">{destination}</span>
          </span>
        </li>
      )}
    </ol>
  );
}
