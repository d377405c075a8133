import { UsageError } from '../../errors.ts';
import { parseCommandArgs, positionals } from '../args.ts';
import { print, printJson } from '../output.ts';

export const summary = 'unpack an export tarball into a new pvr repo (every member checked; nothing written on failure)';
export const usage = 'pvmigrate import FILE -o DIR [--json]';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('import', argv, { output: { type: 'string', short: 'o' } });
  const [file] = positionals('import', pos, ['FILE'], usage);
  if (!values.output) throw new UsageError(`-o DIR is required; usage: ${usage}`);
  const { importTarball } = await import('../../revision/export.ts');
  const r = await importTarball(file!, values.output);
  if (values.json) printJson({ dir: r.dir, objects: r.objects, bytes: r.bytes });
  else print(`${r.dir}: imported ${r.objects} objects, ${r.bytes} bytes`);
  return 0;
}
