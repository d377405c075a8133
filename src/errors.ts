/**
 * Typed errors. Every failure a user can see carries a stable `code`, the file it concerns and the exit
 * status the CLI maps it to: 1 = the input is invalid, untrusted or fails verification; 2 = usage or
 * environment (bad flag, missing file or key, missing tool).
 */
export type ExitCode = 0 | 1 | 2;

export class PvError extends Error {
  readonly code: string;
  readonly file: string | undefined;
  readonly exitCode: ExitCode;

  constructor(code: string, message: string, options: { file?: string; exitCode?: ExitCode; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.file = options.file;
    this.exitCode = options.exitCode ?? 1;
  }

  /** One line for a terminal: `file: message`. */
  toLine(): string {
    return this.file ? `${this.file}: ${this.message}` : this.message;
  }
}

/** The input is malformed, tampered with or untrusted (exit 1). */
export class InvalidInputError extends PvError {
  constructor(code: string, message: string, options: { file?: string; cause?: unknown } = {}) {
    super(code, message, { ...options, exitCode: 1 });
  }
}

/** Bad flags or arguments (exit 2). */
export class UsageError extends PvError {
  constructor(message: string, options: { file?: string; code?: string } = {}) {
    super(options.code ?? 'usage', message, { file: options.file, exitCode: 2 });
  }
}

/** Missing file, key, tool or permission (exit 2). */
export class EnvironmentError extends PvError {
  constructor(code: string, message: string, options: { file?: string; cause?: unknown } = {}) {
    super(code, message, { ...options, exitCode: 2 });
  }
}

/** Wrap a Node system error (ENOENT, EACCES …) for the file it concerns. */
export function fromSystemError(err: unknown, file: string): PvError {
  if (err instanceof PvError) return err;
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOENT':
      return new EnvironmentError('not-found', 'no such file or directory', { file, cause: err });
    case 'EACCES':
    case 'EPERM':
      return new EnvironmentError('permission', 'permission denied', { file, cause: err });
    case 'EISDIR':
      return new EnvironmentError('is-directory', 'is a directory, expected a file', { file, cause: err });
    case 'ENOSPC':
      return new EnvironmentError('no-space', 'no space left on device', { file, cause: err });
    default:
      return new EnvironmentError('io', e?.message ?? String(err), { file, cause: err });
  }
}
