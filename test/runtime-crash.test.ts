// Power cuts during updates: SIGKILL right after a durable step (PV_CRASH_AFTER), torn temp files left
// behind, then boot until stable. A sample of the commit-critical steps runs here; `npm run bench` runs the
// campaign over every durable step of both update kinds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { needTool, tempDir } from './helpers/env.ts';
import { crashCampaign } from './runtime-fixture.ts';

test('reboot update cut after pv_try is set, and after the commit env write: a complete revision boots, later update succeeds', { skip: needTool('mksquashfs') }, async (t) => {
  const r = await crashCampaign(await tempDir(t), 'reboot', (p) => (p.phase === 1 && p.what.startsWith('boot env') && p.what.includes('pv_try')) || (p.phase === 2 && p.what.startsWith('boot env') && !p.what.includes('pv_try')));
  assert.deepEqual(
    r.points.map((p) => [p.phase, p.what.replace(/^(boot env).*pv_try.*$/, '$1 with pv_try').replace(/^(boot env) \{"pv_rev":"locals\/r1"\}$/, '$1 commit')]),
    [
      [1, 'boot env with pv_try'],
      [2, 'boot env commit'],
    ],
  );
  assert.deepEqual(r.failures, []);
});

test('in-place update cut while TESTING: the device settles on a complete revision', { skip: needTool('mksquashfs') }, async (t) => {
  const r = await crashCampaign(await tempDir(t), 'in-place', (p) => p.what.endsWith('TESTING'));
  assert.equal(r.points.length, 1);
  assert.deepEqual(r.failures, []);
});
