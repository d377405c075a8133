import { InvalidInputError } from '../../src/errors.ts';
import type { RandomAccessSource } from '../../src/fs/source.ts';
import type { Artifact, Importer, TrustOptions } from '../types.ts';
import { looksLikeBundle, readTrailer } from './trailer.ts';

export const importer: Importer = {
  format: 'rauc',
  detect: looksLikeBundle,
  async open(src: RandomAccessSource, trust: TrustOptions): Promise<Artifact> {
    await readTrailer(src, trust.maxSignatureSize);
    throw new InvalidInputError('rauc-unsupported', 'reading RAUC bundles is not implemented yet', { file: src.name });
  },
};
