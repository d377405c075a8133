import type { RandomAccessSource } from '../../src/fs/source.ts';
import type { Artifact, Importer, TrustOptions } from '../types.ts';
import { MenderArtifact } from './artifact.ts';
import { readMender } from './read.ts';

/** A Mender artifact is an uncompressed tar whose first member is `version` holding {"format":"mender",…}. */
async function detect(src: RandomAccessSource): Promise<boolean> {
  if (src.size < 1024) return false;
  const head = await src.read(0, 1024);
  const name = head.subarray(0, 100);
  const end = name.indexOf(0);
  if (name.subarray(0, end < 0 ? 100 : end).toString('latin1') !== 'version') return false;
  if (head.subarray(257, 262).toString('latin1') !== 'ustar') return false;
  return /^\s*\{\s*"format"\s*:\s*"mender"/.test(head.subarray(512, 1024).toString('latin1'));
}

/** Read and verify in one pass (structure, manifest, signature with --key, every payload hash). */
async function open(src: RandomAccessSource, trust: TrustOptions): Promise<Artifact> {
  return new MenderArtifact(src, await readMender(src, trust));
}

export const importer: Importer = { format: 'mender', detect, open };
