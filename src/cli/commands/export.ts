import { UsageError } from '../../errors.ts';
import { parseCommandArgs, positionals } from '../args.ts';
import { print, printJson } from '../output.ts';

export const summary = 'write a pvr repo as an export tarball (json + objects/<sha>; gzip for .tgz/.tar.gz)';
export const usage = 'pvmigrate export <repo> -o FILE [--json]';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('export', argv, { output: { type: 'string', short: 'o' } });
  const [dir] = positionals('export', pos, ['<repo>'], usage);
  if (!values.output) throw new UsageError(`-o FILE is required; usage: ${usage}`);
  const { openRepo } = await import('../../revision/pvr-repo.ts');
  const { exportRepo, isGzipName } = await import('../../revision/export.ts');
  const r = await exportRepo(await openRepo(dir!), values.output);
  const gzip = isGzipName(values.output);
  if (values.json) printJson({ file: values.output, gzip, objects: r.objects, bytes: r.bytes });
  else print(`${values.output}: ${r.objects} objects, ${r.bytes} bytes${gzip ? ' (gzip)' : ''}`);
  return 0;
}
