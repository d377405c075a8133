/**
 * Reading a file the user named on the command line (a key, certificate, keyring): a missing or unreadable
 * one is an environment error (exit 2) naming the file and, when given, what it was meant to be.
 */
import { readFile } from 'node:fs/promises';
import { EnvironmentError, fromSystemError } from '../errors.ts';

export async function readNamedFile(path: string, what?: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const e = fromSystemError(err, path);
    if (what === undefined) throw e;
    throw new EnvironmentError(e.code, `cannot read ${what}: ${e.message}`, { file: path, cause: err });
  }
}
