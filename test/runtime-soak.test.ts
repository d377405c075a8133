// A short soak: 50 update cycles (in-place flips, reboot flips, a failing revision) with the bench's
// assertions (npm run bench runs 200): fds and RSS flat within each runtime process, GC keeps exactly the
// running and last committed trails and their objects.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { needTool, tempDir } from './helpers/env.ts';
import { soakCycles } from './runtime-fixture.ts';

test('50 update cycles: flat fds and RSS, GC keeps only what it should', { skip: needTool('mksquashfs') }, async (t) => {
  const r = await soakCycles(await tempDir(t), { cycles: 50, rebootEvery: 25, failEvery: 20 });
  t.diagnostic(r.summary);
  assert.deepEqual(r.failures, []);
});
