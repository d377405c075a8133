import { UsageError } from '../../errors.ts';
import { parseCommandArgs, positionals } from '../args.ts';
import { diagnostic, print, printJson } from '../output.ts';

export const summary = 'add a pvs@2 signature (_sigs/NAME.json) covering a part of a pvr repo, as pvr sig add --part';
export const usage =
  'pvmigrate sign <repo> --key pem [--x5c chain.pem] --part NAME [--json]\n' +
  '  covers NAME/** and _config/NAME/**, excludes NAME/src.json and _sigs/NAME.json (pvr defaults); RS256 or ES256/384/512 from the key';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('sign', argv, {
    key: { type: 'string' },
    x5c: { type: 'string' },
    part: { type: 'string' },
  });
  const [dir] = positionals('sign', pos, ['<repo>'], usage);
  if (!values.key) throw new UsageError(`--key pem is required; usage: ${usage}`);
  if (!values.part) throw new UsageError(`--part NAME is required; usage: ${usage}`);
  if (!/^[^/\\\0]+$/.test(values.part) || values.part === '.' || values.part === '..') throw new UsageError(`--part must be one path component, not '${values.part}'`);
  const { openRepo } = await import('../../revision/pvr-repo.ts');
  const { partMatch, selectKeys, signState } = await import('../../revision/signature.ts');
  const { loadCertificates, loadPrivateKey } = await import('../../revision/trust.ts');
  const repo = await openRepo(dir!);
  const key = await loadPrivateKey(values.key);
  const x5c = values.x5c ? await loadCertificates(values.x5c, 'the x5c chain') : undefined;
  const state = await repo.readState();
  const signed = signState(state, { name: values.part, key, x5c, match: partMatch(values.part) });
  await repo.writeState(signed.state);
  const header = JSON.parse(Buffer.from(String((signed.state[signed.key] as Record<string, unknown>).protected), 'base64url').toString('utf8'));
  const covers = selectKeys(Object.keys(signed.state), header.pvs).included;
  if (covers.length === 0) diagnostic(`pvmigrate sign: warning: part '${values.part}' matches no key of ${dir}; the signature covers nothing`);
  if (values.json) printJson({ signature: signed.key, alg: header.alg, covers, x5c: x5c?.length ?? 0 });
  else print(`${dir}: ${signed.key} (${header.alg}${x5c ? `, x5c chain of ${x5c.length}` : ''}) covers ${covers.length} key(s)`);
  return 0;
}
