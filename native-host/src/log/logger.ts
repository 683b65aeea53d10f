/**
 * A small levelled logger writing one line per event to a stream (stderr by default). Fields
 * are structured so that the text and JSON forms carry the same facts. Callers never pass
 * secrets: there is no redaction here because nothing secret is ever handed to it.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type LogFormat = 'text' | 'json';
export type LogFields = Record<string, string | number | boolean | undefined | null>;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface LogSink {
  write(line: string): unknown;
}

export interface Logger {
  readonly level: LogLevel;
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  sink?: LogSink;
  now?: () => Date;
}

function formatValue(value: string | number | boolean): string {
  const s = String(value);
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const format = options.format ?? 'text';
  const sink = options.sink ?? process.stderr;
  const now = options.now ?? (() => new Date());
  const threshold = RANK[level];

  const emit = (lvl: Exclude<LogLevel, 'silent'>, message: string, fields?: LogFields): void => {
    if (RANK[lvl] < threshold) return;
    const time = now().toISOString();
    if (format === 'json') {
      sink.write(`${JSON.stringify({ time, level: lvl, msg: message, ...fields })}\n`);
      return;
    }
    let line = `${time} ${lvl.padEnd(5)} ${message}`;
    if (fields) {
      for (const [k, v] of Object.entries(fields))
        if (v !== undefined && v !== null) line += ` ${k}=${formatValue(v)}`;
    }
    sink.write(`${line}\n`);
  };

  return {
    level,
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    enabled: (lvl) => RANK[lvl] >= threshold,
  };
}

export const silentLogger: Logger = createLogger({ level: 'silent' });
