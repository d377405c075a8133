import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * parseArgs with the conventions every command shares: `--help`/`-h` and `--json` are always known,
 * and an unknown or malformed flag is a UsageError (exit 2) that names the command.
 */
export function parseCommandArgs<O extends Options>(command: string, argv: string[], options: O) {
  try {
    return parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' }, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]}; see pvmigrate ${command} --help`);
  }
}

/** Exactly `n` positionals or a UsageError quoting the synopsis. */
export function positionals(command: string, given: string[], names: string[], synopsis: string): string[] {
  if (given.length !== names.length) {
    throw new UsageError(`expected ${names.join(' ')}; usage: ${synopsis}`);
  }
  return given;
}
