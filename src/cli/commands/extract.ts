import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from '../../errors.ts';
import { writeStreamAtomically } from '../../fs/atomic.ts';
import { parseCommandArgs, positionals } from '../args.ts';
import { diagnostic, print, printJson } from '../output.ts';
import { trustFlagOptions, trustFlagsUsage, trustOptionsFrom } from '../trust-flags.ts';

export const summary = 'verify an artifact and write its decoded payload files into a directory';
export const usage = `pvmigrate extract <artifact> -o DIR ${trustFlagsUsage} [--json]`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('extract', argv, {
    ...trustFlagOptions,
    output: { type: 'string', short: 'o' },
  });
  const [file] = positionals('extract', pos, ['<artifact>'], usage);
  if (!values.output) throw new UsageError(`-o DIR is required; usage: ${usage}`);
  const outDir = resolve(values.output);
  const { refuseExisting } = await import('../../convert/pipeline.ts');
  // Never replace what is there: a wrong -o must not cost the user a directory.
  await refuseExisting(outDir);
  // Loaded on use so `--help` does not pull in every importer.
  const { openArtifact } = await import('../../../importers/open.ts');
  const artifact = await openArtifact(file, trustOptionsFrom(values));
  // Written into a sibling temp dir and renamed at the end, so a failed verification leaves nothing.
  const tmpDir = join(dirname(outDir), `.${basename(outDir)}.tmp-${process.pid}`);
  try {
    if (artifact.verified === false) {
      diagnostic(`pvmigrate extract: ${file}: ${artifact.verificationError ?? 'signature verification failed'}; nothing extracted`);
      return 1;
    }
    await mkdir(tmpDir, { recursive: true });
    const written: { name: string; size: number; sha256: string }[] = [];
    for (const p of artifact.payloads) {
      const target = join(tmpDir, p.name);
      if (!target.startsWith(tmpDir + '/')) throw new UsageError(`payload name '${p.name}' leaves the output directory`, { file });
      await mkdir(dirname(target), { recursive: true });
      await writeStreamAtomically(target, p.stream());
      written.push({ name: p.name, size: p.size, sha256: p.sha256 });
    }
    await rename(tmpDir, outDir);
    if (values.json) printJson({ output: outDir, files: written });
    else for (const w of written) print(`${w.sha256}  ${w.size}  ${join(values.output, w.name)}`);
    return 0;
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
    await artifact.close();
  }
}
