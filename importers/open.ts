import { InvalidInputError } from '../src/errors.ts';
import { FileSource } from '../src/fs/source.ts';
import { detectImporter } from './index.ts';
import type { Artifact, TrustOptions } from './types.ts';

/** Open an artifact file of any supported format, detected by content. */
export async function openArtifact(path: string, trust: TrustOptions): Promise<Artifact> {
  const src = await FileSource.open(path);
  try {
    const imp = await detectImporter(src);
    if (!imp) {
      throw new InvalidInputError('unknown-format', 'not a Mender artifact, RAUC bundle or SWUpdate image (checked by content)', { file: path });
    }
    return await imp.open(src, trust);
  } catch (err) {
    await src.close();
    throw err;
  }
}
