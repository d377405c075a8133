import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { detectImporter } from '../../importers/index.ts';
import { isZip } from '../convert/zip.ts';
import { fromSystemError } from '../errors.ts';
import { decompressStream } from '../fs/compression.ts';
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
    const kind = await detectImage(src);
    // A compressed stream is only offered when what it decompresses to starts like a tar (an initrd is a cpio).
    if (kind === 'tar' && !(await startsLikeTar(src))) return undefined;
    return kind;
  } catch {
    // A file that is none of ours (or unreadable as one) is simply not offered.
    return undefined;
  } finally {
    await src.close();
  }
}

const USTAR_END = 263;

async function startsLikeTar(src: FileSource): Promise<boolean> {
  const head = await src.read(0, Math.min(src.size, 64 * 1024));
  const compression = head[0] === 0x1f && head[1] === 0x8b ? 'gzip' : head.readUInt32LE(0) === 0xfd2fb528 ? 'zstd' : head[0] === 0xfd ? 'xz' : null;
  if (!compression) return head.subarray(257, 262).toString('latin1') === 'ustar';
  let out = Buffer.alloc(0);
  // The head is cut mid-stream and may hold a bomb: decode at most 1 MiB and judge the first header.
  const decoder = decompressStream(compression, 1 << 20);
  decoder.on('data', (d: Buffer) => (out = Buffer.concat([out, d])));
  await new Promise<void>((resolve) => {
    decoder.on('end', resolve).on('error', () => resolve());
    decoder.end(head);
  });
  return out.length >= USTAR_END && out.subarray(257, 262).toString('latin1') === 'ustar';
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
