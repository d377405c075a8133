import type { RandomAccessSource } from '../../src/fs/source.ts';
import type { Artifact, Importer, TrustOptions } from '../types.ts';

const MAGICS = ['070701', '070702'];

/**
 * A .swu is a cpio newc/crc archive. Every such archive is claimed (no other format uses cpio), so one
 * whose first member is not sw-description gets the precise error from open() rather than "unknown format".
 */
async function detect(src: RandomAccessSource): Promise<boolean> {
  if (src.size < 110) return false;
  return MAGICS.includes((await src.read(0, 6)).toString('latin1'));
}

async function open(src: RandomAccessSource, trust: TrustOptions): Promise<Artifact> {
  // Loaded on use so detection stays cheap for the other formats.
  const { readSwu } = await import('./image.ts');
  const { swuArtifact } = await import('./artifact.ts');
  return swuArtifact(src, await readSwu(src, trust));
}

export const importer: Importer = { format: 'swupdate', detect, open };
