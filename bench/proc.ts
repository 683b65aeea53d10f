/**
 * What a contender costs the machine, read from /proc: resident memory and CPU time of its
 * processes. danted forks helpers, so a contender can be a whole process group.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second for utime/stime in /proc/<pid>/stat (USER_HZ; 100 on Linux). */
const TICKS = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface StatFields {
  readonly pgrp: number;
  readonly cpuSeconds: number;
}

function readStat(pid: number): StatFields | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may itself hold spaces or parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": state=0 ppid=1 pgrp=2 ... utime=11 stime=12 cutime=13 cstime=14. The
  // children's share counts helpers a forking server (danted) has already reaped: their time
  // would vanish from the sum otherwise.
  return {
    pgrp: Number(fields[2]),
    cpuSeconds: (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / TICKS,
  };
}

/** Every live process in the process group `pgid`. */
export function groupPids(pgid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (readStat(pid)?.pgrp === pgid) pids.push(pid);
  }
  return pids;
}

/** User plus system CPU seconds used so far by these processes and their reaped children. */
export function cpuSeconds(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) total += readStat(pid)?.cpuSeconds ?? 0;
  return total;
}

function statusKb(pid: number, field: string): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** VmRSS summed over the processes, in KiB. */
export function rssKb(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) total += statusKb(pid, 'VmRSS');
  return total;
}

/**
 * Proportional set size summed over the processes, in KiB: for a forking server, pages its
 * processes share are counted once rather than once per process as a sum of RSS would.
 */
export function pssKb(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const m = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+) kB/m);
      total += m ? Number(m[1]) : statusKb(pid, 'VmRSS');
    } catch {
      // The process is gone.
    }
  }
  return total;
}

export interface FdLimit {
  readonly soft: number;
  readonly hard: number;
}

function fdLimit(): FdLimit {
  const line = readFileSync('/proc/self/limits', 'utf8').match(/^Max open files\s+(\d+)\s+(\d+)/m);
  return { soft: Number(line?.[1] ?? 1024), hard: Number(line?.[2] ?? 1024) };
}

/**
 * Raises this process's soft limit on open files (up to `wanted`, never past the hard limit)
 * so that every server started from here inherits it: 2,000 held tunnels take 4,000
 * descriptors in a proxy. prlimit(1) can do it for a running process; Node itself cannot.
 */
export function raiseFdLimit(wanted = 65_536): FdLimit {
  const before = fdLimit();
  const target = Math.min(wanted, before.hard);
  if (before.soft >= target) return before;
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${target}:${before.hard}`], {
      stdio: 'ignore',
    });
  } catch {
    // Reported by the caller through the limit that is still in force.
  }
  return fdLimit();
}
