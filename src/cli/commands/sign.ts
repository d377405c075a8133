import { UsageError } from '../../errors.ts';
import { parseCommandArgs, positionals } from '../args.ts';
import { diagnostic, print, printJson } from '../output.ts';

export const summary = 'add a pvs@2 signature (_sigs/NAME.json) to a pvr repo, as pvr sig add --part / --raw';
export const usage =
  'pvmigrate sign <repo> --key pem [--x5c chain.pem] (--part NAME | --raw NAME --include GLOB... [--exclude GLOB...]) [--json]\n' +
  '  --part NAME covers NAME/** and _config/NAME/**, excluding NAME/src.json (pvr defaults); --raw takes the globs as given.\n' +
  '  _sigs/NAME.json is always excluded. RS256 or ES256/384/512 follows the key.';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('sign', argv, {
    key: { type: 'string' },
    x5c: { type: 'string' },
    part: { type: 'string' },
    raw: { type: 'string' },
    include: { type: 'string', multiple: true },
    exclude: { type: 'string', multiple: true },
  });
  const [dir] = positionals('sign', pos, ['<repo>'], usage);
  if (!values.key) throw new UsageError(`--key pem is required; usage: ${usage}`);
  if (Boolean(values.part) === Boolean(values.raw)) throw new UsageError(`give exactly one of --part NAME or --raw NAME; usage: ${usage}`);
  const name = (values.part ?? values.raw)!;
  if (!/^[^/\\\0]+$/.test(name) || name === '.' || name === '..') throw new UsageError(`the signature name must be one path component, not '${name}'`);
  if (values.part && (values.include || values.exclude)) throw new UsageError('--include/--exclude go with --raw; --part uses pvr\'s defaults');
  if (values.raw && !values.include?.length) throw new UsageError('--raw needs at least one --include GLOB');
  // A bare ** is pvr's raw default but the device turns it into an empty pattern that matches nothing.
  if ([...(values.include ?? []), ...(values.exclude ?? [])].includes('**')) throw new UsageError("a bare '**' matches no key on the device; use '*' and 'DIR/**' patterns");
  const { openRepo } = await import('../../revision/pvr-repo.ts');
  const { partMatch, selectKeys, signState } = await import('../../revision/signature.ts');
  const { loadCertificates, loadPrivateKey } = await import('../../revision/trust.ts');
  const repo = await openRepo(dir!);
  const key = await loadPrivateKey(values.key);
  const x5c = values.x5c ? await loadCertificates(values.x5c, 'the x5c chain') : undefined;
  const match = values.part ? partMatch(name) : { include: values.include!, exclude: values.exclude ?? [] };
  const signed = signState(await repo.readState(), { name, key, x5c, match });
  await repo.writeState(signed.state);
  const header = JSON.parse(Buffer.from(String((signed.state[signed.key] as Record<string, unknown>).protected), 'base64url').toString('utf8'));
  const covers = selectKeys(Object.keys(signed.state), header.pvs).included;
  if (covers.length === 0) diagnostic(`pvmigrate sign: warning: the patterns match no key of ${dir}; the signature covers nothing and will never verify`);
  if (values.json) printJson({ signature: signed.key, alg: header.alg, covers, x5c: x5c?.length ?? 0 });
  else print(`${dir}: ${signed.key} (${header.alg}${x5c ? `, x5c chain of ${x5c.length}` : ''}) covers ${covers.length} key(s)`);
  return 0;
}
