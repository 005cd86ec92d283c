/**
 * How the command line ends on an error: user mistakes, unusable files and every error the
 * library raises about its input exit with status 2 and one message (no stack); a job that met
 * more bad lines than --max-errors allows exits with status 1 and its summary; anything else
 * is a bug in recscore: "internal error" with its stack, status 1.
 */
import { TooManyErrors } from '../batch/score_job.js';
import {
  FileError,
  FormatError,
  InvalidArgumentError,
  ModelError,
  NativeLoadError,
  OutOfRangeError,
  PeerMissingError,
  UnsupportedModelError,
} from '../errors.js';
import { UserError } from './user_error.js';

/** Errors about the input, the files or the installation, never bugs. */
export const USER_ERRORS = [
  UserError,
  InvalidArgumentError,
  OutOfRangeError,
  FormatError,
  FileError,
  ModelError,
  UnsupportedModelError,
  PeerMissingError,
  NativeLoadError,
] as const;

/** Node's error for a file the OS refused (ENOENT, EISDIR, EACCES, ENOSPC, …) or a path it rejects. */
function isSystemError(e: { code?: unknown; syscall?: unknown }): boolean {
  if (typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) && typeof e.syscall === 'string') return true;
  // A path with a NUL byte; a file larger than one string or buffer can hold.
  return e.code === 'ERR_INVALID_ARG_VALUE' || e.code === 'ERR_STRING_TOO_LONG' || e.code === 'ERR_FS_FILE_TOO_LARGE';
}

/** The exit status and the text for stderr of an error that ended a command. */
export function failure(e: unknown): { status: number; text: string } {
  const err = (e instanceof Error ? e : new Error(String(e))) as Error & { code?: unknown; syscall?: unknown };
  if (typeof err.code === 'string' && err.code.startsWith('commander.')) {
    // commander has printed its own message.
    return { status: err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2, text: '' };
  }
  if (e instanceof TooManyErrors) return { status: 1, text: err.message.split('\n').map((l) => `recscore: ${l}\n`).join('') };
  if (USER_ERRORS.some((c) => e instanceof c) || isSystemError(err)) return { status: 2, text: `recscore: ${err.message}\n` };
  return { status: 1, text: `recscore: internal error: ${err.stack ?? String(e)}\n` };
}
