/**
 * One error type for the whole engine. Its `kind` decides the HTTP status the API answers with,
 * the CLI's exit code and (later) the CNI error code, so every door reports a failure the same way.
 * Messages say what is wrong and, where there is one, how to fix it.
 */
export type ErrorKind =
  | 'invalid' // bad input from the caller
  | 'not-found'
  | 'conflict' // name or address already taken, object in use
  | 'forbidden' // operation not allowed on this object (predefined networks)
  | 'unavailable' // the daemon or a kernel facility is missing
  | 'internal';

const HTTP_STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  'not-found': 404,
  conflict: 409,
  forbidden: 403,
  unavailable: 503,
  internal: 500,
};

export class BerthError extends Error {
  readonly kind: ErrorKind;
  /** The daemon's answer to a request (the CLI says "Error response from daemon:"), not the client's own refusal. */
  readonly fromDaemon: boolean;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown; fromDaemon?: boolean }) {
    super(message, options);
    this.name = 'BerthError';
    this.kind = kind;
    this.fromDaemon = options?.fromDaemon ?? false;
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.kind];
  }
}

export const invalid = (message: string, cause?: unknown) => new BerthError('invalid', message, { cause });
export const notFound = (message: string) => new BerthError('not-found', message);
export const conflict = (message: string) => new BerthError('conflict', message);
export const forbidden = (message: string) => new BerthError('forbidden', message);

/** A refusal the daemon answered with (an HTTP status of 400 or more), as a client receives it. */
export function daemonError(status: number, message: string): BerthError {
  return new BerthError(kindFromHttpStatus(status), message, { fromDaemon: true });
}

export function kindFromHttpStatus(status: number): ErrorKind {
  for (const [kind, code] of Object.entries(HTTP_STATUS)) if (code === status) return kind as ErrorKind;
  return status >= 500 ? 'internal' : 'invalid';
}

export function isBerthError(err: unknown): err is BerthError {
  return err instanceof BerthError;
}

/** The message of any thrown value, for logs and API answers. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
