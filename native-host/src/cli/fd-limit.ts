import { readFileSync } from 'node:fs';

/** The soft limit on open files of this process (Linux /proc), or undefined where unknown. */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft && /^\d+$/.test(soft) ? Number(soft) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Each tunnel holds two descriptors (client and destination). Past the limit the kernel refuses
 * silently at accept, so say so up front rather than have clients vanish under load.
 */
export function fdLimitWarning(maxConnections: number, limit: number | undefined): string | undefined {
  const needed = maxConnections * 2 + 64;
  if (limit === undefined || limit >= needed) return undefined;
  return (
    `limits.maxConnections is ${maxConnections}, which needs about ${needed} open files, but this process ` +
    `may open ${limit}: past about ${Math.floor((limit - 64) / 2)} tunnels new clients are refused without a log line. ` +
    `Raise the limit (ulimit -n ${needed}) or lower limits.maxConnections.`
  );
}
