/**
 * Structured logs: one JSON object per line on stderr, with a level. Operations log once, when
 * they finish, with their duration and outcome.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Lines written to stderr within one turn of the event loop go out in one write, after the turn:
 * on Linux a write to a pipe or file blocks the thread, and an operation should not pay for its
 * own log line. What is still buffered is written before the process exits.
 */
function batchedStderr(): (line: string) => void {
  let pending: string[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    process.stderr.write(text);
  };
  process.on('exit', flush);
  return (line) => {
    if (pending.push(line) === 1) setImmediate(flush);
  };
}

let stderrWriter: ((line: string) => void) | undefined;

export function createLogger(minLevel: Level = 'info', write: (line: string) => void = (stderrWriter ??= batchedStderr())): Logger {
  const emit = (level: Level) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < ORDER[minLevel]) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Runs an operation and logs it once with its duration and outcome. */
export async function logged<T>(log: Logger, op: string, fields: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    const result = await fn();
    log.info(op, { ...fields, ms: +(performance.now() - start).toFixed(2), outcome: 'ok' });
    return result;
  } catch (err) {
    log.warn(op, { ...fields, ms: +(performance.now() - start).toFixed(2), outcome: 'error', error: (err as Error).message });
    throw err;
  }
}
