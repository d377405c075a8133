import { InvalidInputError } from '../../src/errors.ts';
import type { RandomAccessSource } from '../../src/fs/source.ts';
import type { Artifact, Importer, TrustOptions } from '../types.ts';

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

async function open(src: RandomAccessSource, _trust: TrustOptions): Promise<Artifact> {
  throw new InvalidInputError('unsupported', 'reading Mender artifacts is not implemented yet in this build', { file: src.name });
}

export const importer: Importer = { format: 'mender', detect, open };
