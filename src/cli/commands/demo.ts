import { fileURLToPath } from 'node:url';
import { parseCommandArgs, positionals } from '../args.ts';
import { diagnostic, print, printJson } from '../output.ts';

export const summary = 'run the main job on the bundled samples: build two sample revisions, sign, validate, diff, export';
export const usage = 'pvmigrate demo [--out DIR] [--json]   (without --out the results go to a temp dir that is removed)';

const samples = fileURLToPath(new URL('../../../samples/revision/', import.meta.url));

interface Step {
  step: string;
  ok: boolean;
  detail: string;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('demo', argv, { out: { type: 'string' } });
  positionals('demo', pos, [], usage);
  const { mkdir, mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join, resolve } = await import('node:path');
  const { generateKeyPairSync } = await import('node:crypto');
  const { initRepo } = await import('../../revision/pvr-repo.ts');
  const { partMatch, signState } = await import('../../revision/signature.ts');
  const { validatePath } = await import('../../revision/validate.ts');
  const { diffStates } = await import('../../revision/diff.ts');
  const { exportRepo } = await import('../../revision/export.ts');

  const out = values.out ? resolve(values.out) : await mkdtemp(join(tmpdir(), 'pvmigrate-demo-'));
  if (values.out) await mkdir(out, { recursive: true });
  const steps: Step[] = [];
  const log = (s: Step): void => {
    steps.push(s);
    if (!values.json) print(`${s.ok ? 'ok  ' : 'FAIL'} ${s.step}: ${s.detail}`);
  };
  try {
    // A throwaway device key, as a fleet operator's signing key would be; the device trusts its public half.
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const repos: Record<'a' | 'b', Awaited<ReturnType<typeof initRepo>>> = {} as never;
    for (const name of ['a', 'b'] as const) {
      const dir = join(out, `revision-${name}`);
      await rm(dir, { recursive: true, force: true });
      const repo = await initRepo(dir);
      const state = await repo.commitTree(join(samples, name));
      const signed = signState(state, { name: 'app', key: privateKey, match: partMatch('app') });
      const bsp = signState(signed.state, { name: 'bsp', key: privateKey, match: { include: ['bsp/**', '#spec'], exclude: ['bsp/src.json'] } });
      await repo.writeState(bsp.state);
      repos[name] = repo;
      log({ step: `build revision ${name.toUpperCase()}`, ok: true, detail: `${dir} from samples/revision/${name}: ${Object.keys(bsp.state).length} keys, signed _sigs/app.json and _sigs/bsp.json (ES256)` });
      const v = await validatePath(dir, { mode: 'strict', pubkey: publicKey });
      log({ step: `validate ${name.toUpperCase()} (strict)`, ok: v.valid, detail: v.valid ? `${v.objects} objects, ${v.bytes} bytes, ${v.signatures.length} signatures verified` : v.errors.map((e) => `${e.key ?? ''} ${e.message}`).join('; ') });
    }
    const d = await diffStates(await repos.a.readState(), await repos.b.readState(), (sha) => repos.b.objects.size(sha));
    log({
      step: 'diff A → B',
      ok: true,
      detail: `${d.added.length} added, ${d.removed.length} removed, ${d.changed.length} changed (${d.changed.join(', ')}); ${d.bytesToShip} bytes to ship; ${d.reboot ? 'reboot' : `no reboot, restart ${d.restartContainers.join(', ') || 'nothing'}`}`,
    });
    const tarball = join(out, 'revision-b.tgz');
    const e = await exportRepo(repos.b, tarball);
    const v = await validatePath(tarball, { mode: 'strict', pubkey: publicKey });
    log({ step: 'export B and validate the tarball', ok: v.valid, detail: `${tarball}: ${e.objects} objects, ${e.bytes} bytes; ${v.valid ? 'valid' : v.errors.map((x) => x.message).join('; ')}` });
  } finally {
    if (!values.out) await rm(out, { recursive: true, force: true });
  }
  const ok = steps.every((s) => s.ok);
  if (values.json) printJson({ ok, out: values.out ? out : null, steps });
  else if (!values.out) diagnostic('(pass --out DIR to keep the repos and the tarball)');
  return ok ? 0 : 1;
}
