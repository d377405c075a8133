import type { RandomAccessSource } from '../src/fs/source.ts';
import { importer as mender } from './mender/index.ts';
import { importer as rauc } from './rauc/index.ts';
import { importer as swupdate } from './swupdate/index.ts';
import type { Importer } from './types.ts';

export const importers: readonly Importer[] = [mender, rauc, swupdate];

/** The importer whose format the source holds, judged by content; undefined when none claims it. */
export async function detectImporter(src: RandomAccessSource): Promise<Importer | undefined> {
  for (const imp of importers) {
    if (await imp.detect(src)) return imp;
  }
  return undefined;
}
