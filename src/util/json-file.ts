import { readFile, stat } from 'node:fs/promises';
import { InvalidInputError, fromSystemError } from '../errors.ts';

/**
 * A small JSON document a user hands us (a plan, recorded answers): bounded in size, with a missing file an
 * environment error (exit 2) and bad JSON invalid input (exit 1) under `code`, saying what to do next.
 */
export async function readJsonFile(file: string, options: { code: string; what: string; maxBytes: number; hint: string }): Promise<unknown> {
  let text: string;
  try {
    if ((await stat(file)).size > options.maxBytes) throw new InvalidInputError(options.code, `larger than ${options.maxBytes} bytes: not ${options.what}`, { file });
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw fromSystemError(err, file);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidInputError(options.code, `not JSON: ${(err as Error).message}; ${options.hint}`, { file });
  }
}
