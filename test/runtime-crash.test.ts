// Power cuts during a reboot update: SIGKILL right after every durable step (PV_CRASH_AFTER=k), and in the
// middle of every step with the file being written torn in half (PV_CRASH_MODE=torn), both in the runtime
// taking the update and in the runtime trying it, then boot until stable; and the same for an in-place update.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { needTool, tempDir } from './helpers/env.ts';
import { crashCampaign } from './runtime-fixture.ts';

test('reboot update cut right after, and torn in the middle of, every durable step: a complete revision boots, objects hash right, a later update succeeds', { skip: needTool('mksquashfs') }, async (t) => {
  const t0 = Date.now();
  const r = await crashCampaign(await tempDir(t), 'reboot', { modes: ['after', 'torn'] });
  t.diagnostic(`${r.points.length} injection points in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${r.points.filter((p) => !p.torn).map((p) => `${p.phase}.${p.step} ${p.what}`).join('; ')}`);
  // Each step of the flow is cut both ways.
  assert.equal(r.points.filter((p) => p.torn).length, r.points.filter((p) => !p.torn).length);
  // The flow as traced: receive (state, objects), prepare the trail, set pv_try and reboot; then the try
  // boot tests and commits (boot env without pv_try, .pv/done, DONE).
  const at = (phase: number) => r.points.filter((p) => p.phase === phase && !p.torn).map((p) => p.what);
  for (const w of ['state locals/r1', 'progress locals/r1 QUEUED', 'progress locals/r1 INPROGRESS']) assert.ok(at(1).includes(w), `${w} not in ${at(1).join('; ')}`);
  assert.ok(at(1).some((w) => w.startsWith('object ')) && at(1).some((w) => w.startsWith('link locals/r1/')), at(1).join('; '));
  assert.ok(at(1).some((w) => /^boot env .*"pv_try":"locals\/r1"/.test(w)), at(1).join('; '));
  for (const w of ['boot env {"pv_rev":"locals/r1"}', 'done locals/r1', 'progress locals/r1 DONE']) assert.ok(at(2).includes(w), `${w} not in ${at(2).join('; ')}`);
  assert.deepEqual(r.failures, []);
});

test('in-place update cut right after, and torn in the middle of, every durable step: a complete revision runs, objects hash right, a later update succeeds', { skip: needTool('mksquashfs') }, async (t) => {
  const t0 = Date.now();
  const r = await crashCampaign(await tempDir(t), 'in-place', { modes: ['after', 'torn'] });
  t.diagnostic(`${r.points.length} injection points in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  assert.equal(r.points.filter((p) => p.torn).length, r.points.filter((p) => !p.torn).length);
  assert.ok(r.points.some((p) => !p.torn && p.what === 'progress locals/r1 UPDATED'), r.points.map((p) => p.what).join('; '));
  assert.deepEqual(r.failures, []);
});
