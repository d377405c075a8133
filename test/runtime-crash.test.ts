// Power cuts during updates: SIGKILL right after a durable step (PV_CRASH_AFTER), torn temp files left
// behind, then boot until stable. The commit point of a reboot update is cut here; `npm run bench` runs
// the campaign over every durable step of both update kinds (in-place and reboot).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { needTool, tempDir } from './helpers/env.ts';
import { crashCampaign } from './runtime-fixture.ts';

test('reboot update cut right after the commit wrote the boot env (before .pv/done): the update boots committed, a later update succeeds', { skip: needTool('mksquashfs') }, async (t) => {
  const r = await crashCampaign(await tempDir(t), 'reboot', (p) => p.phase === 2 && p.what === 'boot env {"pv_rev":"locals/r1"}');
  assert.deepEqual(
    r.points.map((p) => [p.phase, p.what]),
    [[2, 'boot env {"pv_rev":"locals/r1"}']],
  );
  assert.deepEqual(r.failures, []);
});
