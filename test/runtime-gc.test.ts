// GC's "keep factory (configurable)": with --gc-keep-factory or PV_STORAGE_GC_KEEP_FACTORY=1 the factory
// revision 0 and its objects survive POST /storage/gc; by default only the running/committed one does.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseJson } from '../src/revision/canonical-json.ts';
import { objectRefs, type State } from '../src/revision/state.ts';
import { Storage } from '../runtime/storage.ts';
import { repoRoot } from './helpers/cli.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';
import { buildRevision, ctrl, startRuntime, waitFor } from './runtime-fixture.ts';

const loop = 'trap "exit 0" TERM\nwhile :; do sleep 0.1; done\n';

test('GC keeps the factory revision only when configured (flag or PV_STORAGE_GC_KEEP_FACTORY)', { skip: needTool('mksquashfs') }, async (t) => {
  const dir = await tempDir(t);
  const r0 = await buildRevision(join(dir, 'r0'), [{ name: 'app', init: `echo v0\n${loop}` }]);
  const r1 = await buildRevision(join(dir, 'r1'), [{ name: 'app', init: `echo v1\n${loop}` }]);
  const base = join(dir, 'base');
  const cli = join(repoRoot, 'bin/pvmigrate.js');
  sh(process.execPath, [cli, 'deploy', r0, '--storage', base]);
  sh(process.execPath, [cli, 'deploy', r1, '--storage', base, '--rev', 'locals/r1']);
  // locals/r1 committed as the running revision, as a DONE update leaves it.
  const b = new Storage(base);
  await b.markDone('locals/r1');
  await b.writeBootEnv({ pv_rev: 'locals/r1' });
  const refs = (st: Storage, rev: string) => [...objectRefs(parseJson(readFileSync(st.statePath(rev))) as State).keys()];

  const gcWith = async (name: string, extra: string[], env: NodeJS.ProcessEnv) => {
    const storage = join(dir, name);
    sh('cp', ['-a', base, storage]);
    const ctrlPath = join(dir, `${name}.ctrl`);
    const rt = startRuntime(storage, ctrlPath, 'process', extra, env);
    await waitFor(ctrlPath, (cs) => cs.length === 1 && cs[0].status === 'STARTED', `${name} up`);
    const gc = await ctrl(ctrlPath, 'POST', '/storage/gc');
    await ctrl(ctrlPath, 'POST', '/commands', { op: 'POWEROFF_DEVICE' });
    assert.equal(await rt.exit, 0, rt.stderr());
    assert.equal(gc.status, 200);
    const st = new Storage(storage);
    return { reclaimed: gc.json().reclaimed as number, revs: await st.listRevisions(), objects: readdirSync(st.objectsDir).filter((n) => !n.startsWith('.')).sort(), st };
  };

  const plain = await gcWith('plain', [], {});
  assert.deepEqual(plain.revs, ['locals/r1']);
  assert.deepEqual(plain.objects, refs(plain.st, 'locals/r1').sort());
  // Exactly the bytes of the objects only the removed factory revision used.
  const only0 = refs(b, '0').filter((sha) => !refs(b, 'locals/r1').includes(sha));
  assert.ok(only0.length > 0);
  assert.equal(plain.reclaimed, only0.reduce((n, sha) => n + statSync(join(b.objectsDir, sha)).size, 0));

  for (const [name, extra, env] of [['flag', ['--gc-keep-factory'], {}], ['env', [], { PV_STORAGE_GC_KEEP_FACTORY: '1' }]] as const) {
    const kept = await gcWith(name, [...extra], env);
    assert.deepEqual(kept.revs, ['0', 'locals/r1'], name);
    assert.deepEqual(kept.objects, [...new Set([...refs(kept.st, '0'), ...refs(kept.st, 'locals/r1')])].sort(), name);
    assert.equal(kept.reclaimed, 0, name);
  }
});
