import type { RandomAccessSource } from '../../src/fs/source.ts';
import type { Artifact, Importer, TrustOptions } from '../types.ts';

const MAGICS = ['070701', '070702'];
const FIRST_MEMBER = 'sw-description';

/** A .swu is a cpio newc/crc archive whose first member is sw-description. */
async function detect(src: RandomAccessSource): Promise<boolean> {
  const headerLen = 110 + FIRST_MEMBER.length + 1;
  if (src.size < headerLen) return false;
  const head = await src.read(0, headerLen);
  if (!MAGICS.includes(head.toString('latin1', 0, 6))) return false;
  const nameSize = parseInt(head.toString('latin1', 94, 102), 16);
  return nameSize === FIRST_MEMBER.length + 1 && head.toString('latin1', 110, 110 + FIRST_MEMBER.length) === FIRST_MEMBER;
}

async function open(src: RandomAccessSource, trust: TrustOptions): Promise<Artifact> {
  // Loaded on use so detection stays cheap for the other formats.
  const { readSwu } = await import('./image.ts');
  const { swuArtifact } = await import('./artifact.ts');
  return swuArtifact(src, await readSwu(src, trust));
}

export const importer: Importer = { format: 'swupdate', detect, open };
