import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fromSystemError, UsageError } from '../../errors.ts';
import type { FileTree } from '../../fs/file-tree.ts';
import { parseCommandArgs, positionals } from '../args.ts';
import { diagnostic, print, printJson } from '../output.ts';

export const summary = 'write a deterministic squashfs image from a directory or a filesystem image, without mounting';
export const usage = 'pvmigrate mksquashfs <image-or-dir> -o OUT.squashfs [--comp gzip|xz] [--partition N] [--workers N] [--json]';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('mksquashfs', argv, {
    output: { type: 'string', short: 'o' },
    comp: { type: 'string' },
    partition: { type: 'string' },
    workers: { type: 'string' },
  });
  const [input] = positionals('mksquashfs', pos, ['<image-or-dir>'], usage);
  if (!values.output) throw new UsageError(`-o OUT.squashfs is required; usage: ${usage}`);
  const comp = values.comp ?? 'gzip';
  if (comp !== 'gzip' && comp !== 'xz') throw new UsageError(`--comp must be gzip or xz, not '${comp}'`);
  const intFlag = (name: string, v: string | undefined, min: number): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} needs an integer ≥ ${min}, got '${v}'`);
    return Number(v);
  };
  const partition = intFlag('partition', values.partition, 1);
  const workers = intFlag('workers', values.workers, 1);

  let isDir: boolean;
  try {
    isDir = (await stat(input!)).isDirectory();
  } catch (err) {
    throw fromSystemError(err, input!);
  }
  // Loaded on use so `--help` stays fast.
  let tree: FileTree;
  if (isDir) {
    if (partition !== undefined) throw new UsageError('--partition applies to disk images, not directories', { file: input });
    const { openDirTree } = await import('../../fs/dir-tree.ts');
    tree = await openDirTree(input!);
  } else {
    const { openImageFile } = await import('../../fs/open-image.ts');
    tree = await openImageFile(input!, { partition });
  }
  try {
    const { writeSquashfs } = await import('../../fs/squashfs/writer.ts');
    const out = resolve(values.output);
    const result = await writeSquashfs(tree, out, { comp, workers });
    for (const s of result.skippedXattrs) diagnostic(`warning: squashfs cannot store the xattr ${s} (only user.*, trusted.*, security.*); left out`);
    if (values.json) printJson({ output: out, comp, size: result.size, inodes: result.inodes, skippedXattrs: result.skippedXattrs });
    else print(`${values.output}: squashfs 4.0 (${comp}), ${result.size} bytes, ${result.inodes} inodes`);
    return 0;
  } finally {
    await tree.close();
  }
}
