import { UsageError } from '../../errors.ts';
import { parseCommandArgs, positionals } from '../args.ts';
import { print, printJson } from '../output.ts';

export const summary = 'install a revision (pvr repo or export tarball) into a device storage directory';
export const usage = 'pvmigrate deploy <repo|export.tgz> --storage DIR [--rev 0|N|locals/NAME] [--json]';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('deploy', argv, { storage: { type: 'string' }, rev: { type: 'string' } });
  const [source] = positionals('deploy', pos, ['<repo|export.tgz>'], usage);
  if (!values.storage) throw new UsageError(`--storage DIR is required; usage: ${usage}`);
  const { deployFrom } = await import('../../../runtime/deploy.ts');
  const r = await deployFrom(source, values.storage, { rev: values.rev });
  if (values.json) printJson(r);
  else print(`deployed revision ${r.rev} into ${values.storage}: ${r.objects} objects (${r.objectsAdded} new)${r.bootEnvUpdated ? `; boots ${r.rev}` : ''}`);
  return 0;
}
