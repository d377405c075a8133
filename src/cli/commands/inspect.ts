import { parseCommandArgs, positionals } from '../args.ts';
import { diagnostic, print, printJson } from '../output.ts';
import { trustFlagOptions, trustFlagsUsage, trustOptionsFrom } from '../trust-flags.ts';

export const summary = 'read and verify a .mender, .raucb or .swu artifact and list its payloads';
export const usage = `pvmigrate inspect <artifact> ${trustFlagsUsage} [--json]`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('inspect', argv, trustFlagOptions);
  const [file] = positionals('inspect', pos, ['<artifact>'], usage);
  // Loaded on use so `--help` does not pull in every importer.
  const { openArtifact } = await import('../../../importers/open.ts');
  const artifact = await openArtifact(file, trustOptionsFrom(values));
  try {
    if (values.json) printJson(artifact.toJSON());
    else print(artifact.describe());
    if (artifact.verified === false) {
      diagnostic(`pvmigrate inspect: ${file}: ${artifact.verificationError ?? 'signature verification failed'}`);
      return 1;
    }
    return 0;
  } finally {
    await artifact.close();
  }
}
