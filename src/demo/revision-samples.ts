import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { diffStates } from '../revision/diff.ts';
import { exportRepo } from '../revision/export.ts';
import { initRepo, type PvrRepo } from '../revision/pvr-repo.ts';
import { partMatch, signState } from '../revision/signature.ts';
import { validatePath } from '../revision/validate.ts';
import type { StepLog } from './step.ts';

const samples = fileURLToPath(new URL('../../samples/revision/', import.meta.url));

/** The revision core on hand-made trees: build two revisions, sign, validate strictly, diff, export. */
export async function revisionSamples(out: string, log: StepLog): Promise<void> {
  // A throwaway device key, as a fleet operator's signing key would be; the device trusts its public half.
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const repos = {} as Record<'a' | 'b', PvrRepo>;
  for (const name of ['a', 'b'] as const) {
    const dir = join(out, `revision-${name}`);
    const repo = await initRepo(dir);
    const state = await repo.commitTree(join(samples, name));
    const signed = signState(state, { name: 'app', key: privateKey, match: partMatch('app') });
    const bsp = signState(signed.state, { name: 'bsp', key: privateKey, match: { include: ['bsp/**', '#spec'], exclude: ['bsp/src.json'] } });
    await repo.writeState(bsp.state);
    repos[name] = repo;
    log({ step: `build revision ${name.toUpperCase()}`, ok: true, detail: `samples/revision/${name}: ${Object.keys(bsp.state).length} keys, signed _sigs/app.json and _sigs/bsp.json (ES256)` });
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
  log({ step: 'export B and validate the tarball', ok: v.valid, detail: `revision-b.tgz: ${e.objects} objects, ${e.bytes} bytes; ${v.valid ? 'valid' : v.errors.map((x) => x.message).join('; ')}` });
}
