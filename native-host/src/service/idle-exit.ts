/**
 * A service the bridge started belongs to the browser: once no bridge (or other control
 * client) is connected and the last tunnel has closed, it waits a while, in case the browser
 * reconnects, and then ends. One the user started with `serve` never uses this.
 */
export const DEFAULT_IDLE_EXIT_MS = 60_000;
export const IDLE_EXIT_ENV = 'SWITCHYARD_IDLE_EXIT_MS';

export interface IdleProbe {
  controlClients(): number;
  activeTunnels(): number;
}

export interface IdleExit {
  stop(): void;
}

/** The idle period: the flag, else $SWITCHYARD_IDLE_EXIT_MS, else 60 s. */
export function idleExitMs(flag: number | undefined, env: NodeJS.ProcessEnv = process.env): number {
  if (flag !== undefined) return flag;
  const fromEnv = Number(env[IDLE_EXIT_ENV]);
  return env[IDLE_EXIT_ENV] && Number.isInteger(fromEnv) && fromEnv >= 0 ? fromEnv : DEFAULT_IDLE_EXIT_MS;
}

/**
 * Calls `onIdle` once, after `idleMs` during which the probe saw neither clients nor tunnels.
 * Polled rather than evented: tunnels end inside the SOCKS server, which has no hook for it,
 * and a poll every second at most costs nothing.
 */
export function startIdleExit(probe: IdleProbe, idleMs: number, onIdle: () => void): IdleExit {
  const pollMs = Math.max(20, Math.min(1000, Math.floor(idleMs / 4)));
  let idleSince: number | undefined;
  const timer = setInterval(() => {
    const idle = probe.controlClients() === 0 && probe.activeTunnels() === 0;
    if (!idle) {
      idleSince = undefined;
      return;
    }
    idleSince ??= Date.now();
    if (Date.now() - idleSince >= idleMs) {
      clearInterval(timer);
      onIdle();
    }
  }, pollMs);
  // The listeners keep the process alive; this timer alone must not.
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
