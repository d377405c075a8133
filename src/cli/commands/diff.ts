import { parseCommandArgs, positionals } from '../args.ts';
import { print, printJson } from '../output.ts';

export const summary = 'compare two revisions: merge patch, keys added/removed/changed, bytes to ship, reboot or not';
export const usage = 'pvmigrate diff <a> <b> [--json]   (each a pvr repo or an export tarball)';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('diff', argv, {});
  const [a, b] = positionals('diff', pos, ['<a>', '<b>'], usage);
  const { stat } = await import('node:fs/promises');
  const { fromSystemError } = await import('../../errors.ts');
  const { openRepo } = await import('../../revision/pvr-repo.ts');
  const { readExportIndex } = await import('../../revision/export.ts');
  const { diffStates } = await import('../../revision/diff.ts');
  // A repo gives its state and object sizes; a tarball is indexed in one pass without unpacking its objects.
  const load = async (path: string) => {
    const st = await stat(path).catch((err: unknown) => {
      throw fromSystemError(err, path);
    });
    if (st.isDirectory()) {
      const repo = await openRepo(path);
      return { state: await repo.readState(), sizeOf: (sha: string) => repo.objects.size(sha) };
    }
    const index = await readExportIndex(path);
    return { state: index.state, sizeOf: async (sha: string) => index.sizes.get(sha) };
  };
  const [revA, revB] = [await load(a!), await load(b!)];
  const d = await diffStates(revA.state, revB.state, revB.sizeOf);
  if (values.json) {
    printJson({ added: d.added, removed: d.removed, changed: d.changed, bytesToShip: d.bytesToShip, reboot: d.reboot, patch: d.patch });
    return 0;
  }
  const lines = [`${a} → ${b}: ${d.added.length} added, ${d.removed.length} removed, ${d.changed.length} changed; ${d.bytesToShip} bytes to ship`];
  for (const [mark, keys] of [['+', d.added], ['-', d.removed], ['~', d.changed]] as const) for (const k of keys) lines.push(`  ${mark} ${k}`);
  if (d.unknownSizes.length) lines.push(`  (${d.unknownSizes.length} new object(s) missing from ${b}: their size is not counted)`);
  if (d.reboot) {
    lines.push(`reboot: yes (${d.rebootReasons.length} key(s) need it, e.g. ${d.rebootReasons[0]!.key}: ${d.rebootReasons[0]!.reason})`);
  } else {
    lines.push(`reboot: no${d.restartContainers.length ? `; restart ${d.restartContainers.join(', ')}` : '; nothing to restart'}`);
  }
  print(lines.join('\n'));
  return 0;
}
