import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { TrustOptions } from '../../importers/types.ts';
import { InvalidInputError } from '../errors.ts';
import { FileSource } from '../fs/source.ts';
import { openSource, type OpenedSource } from './open-source.ts';
import type { Progress } from './progress.ts';
import { extractZip, isZip } from './zip.ts';

export interface InputFile {
  file: string;
  /** Name recorded in the source metadata ("ci.zip:build/release.mender" for a zip member). */
  display: string;
}

/** A .zip input (by content) becomes its members in name order, numbers compared as numbers; any other file is itself. */
export async function unzipIfNeeded(input: string, work: string): Promise<InputFile[]> {
  const src = await FileSource.open(input);
  let head: Buffer;
  try {
    head = await src.read(0, Math.min(4, src.size));
  } finally {
    await src.close();
  }
  if (!isZip(head)) return [{ file: input, display: basename(input) }];
  const dir = join(work, 'zip');
  await mkdir(dir);
  const members = await extractZip(input, dir);
  return members
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))
    .map((m) => ({ file: m.path, display: `${basename(input)}:${m.name}` }));
}

/**
 * One revision's input: a file, or a zip holding at most one artifact or image plus any number of docker/OCI
 * image archives (a CI job's downloads), which join the revision as containers.
 */
export async function openInput(input: string, work: string, trust: TrustOptions, progress: Progress): Promise<OpenedSource> {
  const files = await unzipIfNeeded(input, work);
  if (files.length === 0) throw new InvalidInputError('zip-members', 'the zip holds no files', { file: input });
  const scratch = join(work, 'scratch');
  await mkdir(scratch, { recursive: true });
  const opened: OpenedSource[] = [];
  try {
    for (const f of files) opened.push(await progress.phase(`read ${f.display}`, () => openSource(f.file, trust, scratch, f.display)));
    const mains = opened.filter((s) => s.hasRootfs);
    if (mains.length > 1) {
      throw new InvalidInputError(
        'zip-members',
        `the zip holds ${mains.length} root filesystem sources (${mains.map((m) => m.info.file.split(':').pop()).join(', ')}); convert takes one, use pvmigrate fleet for a release series`,
        { file: input },
      );
    }
    const main = mains[0] ?? opened[0]!;
    const images = new Map([...opened.flatMap((s) => [...s.images])]);
    const others = opened.filter((s) => s !== main);
    const info = others.length === 0 ? main.info : { ...main.info, images: others.map((s) => ({ file: s.info.file, sha256: s.info.sha256, ...(s.info.name ? { ref: s.info.name } : {}) })) };
    return {
      ...main,
      info,
      images,
      async close() {
        for (const s of opened) await s.close();
      },
    };
  } catch (err) {
    for (const s of opened) await s.close();
    throw err;
  }
}
