import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { detectImporter } from '../../importers/index.ts';
import { isZip } from '../convert/zip.ts';
import { fromSystemError } from '../errors.ts';
import { detectImage } from '../fs/open-image.ts';
import { FileSource } from '../fs/source.ts';

export interface FoundInput {
  file: string;
  /** mender | rauc | swupdate | zip | ext4 | squashfs | vfat | tar | disk */
  kind: string;
  bytes: number;
}

/** What a file holds, judged by content; undefined when pvmigrate cannot convert it. */
export async function inputKind(file: string): Promise<string | undefined> {
  const src = await FileSource.open(file);
  try {
    if (src.size === 0) return undefined;
    if (isZip(await src.read(0, Math.min(4, src.size)))) return 'zip';
    const imp = await detectImporter(src);
    if (imp) return imp.format;
    return await detectImage(src);
  } catch {
    // A file that is none of ours (or unreadable as one) is simply not offered.
    return undefined;
  } finally {
    await src.close();
  }
}

/** Convertible inputs directly inside `dir`, by content, sorted by name. */
export async function discoverInputs(dir: string): Promise<FoundInput[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  } catch (err) {
    throw fromSystemError(err, dir);
  }
  const found: FoundInput[] = [];
  for (const name of names) {
    const file = join(dir, name);
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) continue;
    const kind = await inputKind(file);
    if (kind) found.push({ file, kind, bytes: st.size });
  }
  return found;
}
