import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { openRepo, initRepo } from '../src/revision/pvr-repo.ts';
import { runCli } from './helpers/cli.ts';
import { needTool, tempDir } from './helpers/env.ts';
import { buildRevision } from './runtime-fixture.ts';

const samples = fileURLToPath(new URL('../samples/revision/', import.meta.url));

test('validate --boot: a runnable revision reaches its goals (exit 0); the shell-less sample does not (exit 1)', { skip: needTool('busybox') }, async (t) => {
  const dir = await tempDir(t);
  const repoDir = await buildRevision(dir, [{ name: 'loop', init: 'trap "exit 0" TERM\nwhile :; do sleep 0.1; done\n' }]);
  // The runtime fixture has no BSP; add the sample's so the revision is valid and the boot check runs.
  mkdirSync(join(repoDir, 'bsp'));
  for (const f of ['run.json', 'kernel.img', 'pantavisor']) writeFileSync(join(repoDir, 'bsp', f), readFileSync(join(samples, 'a/bsp', f)));
  await (await openRepo(repoDir)).commitTree();
  const ok = await runCli(['validate', repoDir, '--boot', '--timeout', '20', '--json']);
  assert.equal(ok.code, 0, ok.stderr + ok.stdout);
  const doc = JSON.parse(ok.stdout);
  assert.equal(doc.valid, true);
  assert.equal(doc.boot.ok, true);
  assert.deepEqual(doc.boot.containers.map((c: { name: string; reached: boolean }) => [c.name, c.reached]), [['loop', true]]);

  const sample = join(dir, 'sample');
  await (await initRepo(sample)).commitTree(join(samples, 'a'));
  const junit = join(dir, 'boot.xml');
  const bad = await runCli(['validate', sample, '--boot', '--timeout', '10', '--junit', junit]);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /FAIL app \(app\)/);
  assert.match(bad.stderr, /error \[boot\] app\/run.json: container app is \w+, its goal STARTED was not reached/);
  assert.match(readFileSync(junit, 'utf8'), /tests="12" failures="1"[\s\S]*name="boot">\s*<failure/);
  assert.equal((await runCli(['validate', sample, '--timeout', '5'])).code, 2, '--timeout without --boot is a usage error');
});
