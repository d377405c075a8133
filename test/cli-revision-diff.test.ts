import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { canonicalize, parseJson } from '../src/revision/canonical-json.ts';
import { applyMergePatch } from '../src/revision/diff.ts';
import { initRepo } from '../src/revision/pvr-repo.ts';
import { runCli } from './helpers/cli.ts';
import { sh, tempDir } from './helpers/env.ts';

const samples = fileURLToPath(new URL('../samples/revision/', import.meta.url));

test('diff --json of the sample revisions: app-only change, no reboot, bytes = the new objects', async (t) => {
  const work = await tempDir(t);
  for (const n of ['a', 'b']) await (await initRepo(join(work, n))).commitTree(join(samples, n));
  const r = await runCli(['diff', join(work, 'a'), join(work, 'b'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(d), ['added', 'removed', 'changed', 'bytesToShip', 'reboot', 'patch']);
  assert.deepEqual(d.changed, ['_config/app/etc/app.conf', 'app/root.squashfs']);
  assert.equal(d.reboot, false);
  const size = (f: string): number => Number(sh('stat', ['-c', '%s', join(samples, 'b', f)]).trim());
  assert.equal(d.bytesToShip, size('app/root.squashfs') + size('_config/app/etc/app.conf'));
  const a = parseJson(readFileSync(join(work, 'a/.pvr/json')));
  assert.equal(canonicalize(applyMergePatch(a, parseJson(JSON.stringify(d.patch)))), readFileSync(join(work, 'b/.pvr/json'), 'utf8'));
  // The reverse direction through an export tarball gives the same keys.
  assert.equal((await runCli(['export', join(work, 'a'), '-o', join(work, 'a.tgz')])).code, 0);
  const back = JSON.parse((await runCli(['diff', join(work, 'b'), join(work, 'a.tgz'), '--json'])).stdout);
  assert.deepEqual(back.changed, d.changed);
  // A tarball is indexed without unpacking: same answer as the repo it came from.
  assert.equal((await runCli(['export', join(work, 'b'), '-o', join(work, 'b.tar')])).code, 0);
  assert.deepEqual(JSON.parse((await runCli(['diff', join(work, 'a.tgz'), join(work, 'b.tar'), '--json'])).stdout), d);
  const human = await runCli(['diff', join(work, 'a'), join(work, 'b')]);
  assert.match(human.stdout, /reboot: no; restart app/);
});

test('demo (npm start) converts a release of each format, a fleet, boots it, and builds the sample revisions', { timeout: 180_000 }, async (t) => {
  const out = join(await tempDir(t), 'demo');
  const r = await runCli(['demo', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.ok, true);
  assert.deepEqual(
    doc.steps.map((s: { step: string }) => s.step),
    [
      'convert release-1.0.mender',
      'convert release-1.0.raucb',
      'convert release-1.0.swu',
      'fleet 1.0',
      'fleet 1.1',
      'boot mender/ in the runtime',
      'build revision A',
      'validate A (strict)',
      'build revision B',
      'validate B (strict)',
      'diff A → B',
      'export B and validate the tarball',
    ],
  );
  assert.match(doc.steps[4].detail, /no reboot; changed: sensor\/root\.ovl\.squashfs$/);
  assert.match(doc.steps[5].detail, /every status goal reached/);
  assert.equal(doc.report, join(out, 'report.html'));
  const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
  assert.deepEqual(report.inputs.map((i: { format: string }) => i.format), ['mender', 'rauc', 'swupdate', 'mender']);
  assert.ok(!JSON.stringify(report).includes('.pvmigrate-'), 'no path of the work directory leaks into the report');
});
