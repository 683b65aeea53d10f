/** Bookkeeping for the child processes tests start, by PID. */

/**
 * A set of PIDs to SIGKILL if this test process exits with them still in it: add a child's PID
 * when it starts and delete it once it has exited (or leave it, for a detached service).
 */
export function killedAtExit(): Set<number> {
  const pids = new Set<number>();
  process.once('exit', () => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  return pids;
}

/** Whether a process with this PID exists (signal 0 tells without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
