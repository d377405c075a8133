// The soak of issue #8: 200 consecutive update cycles in one storage, reboot and in-place updates and
// failing revisions first, then in-place updates only so that one runtime process serves well over 100
// cycles: open fds flat in every process, the RSS trend of the long-lived one within 8 MiB per 100 cycles,
// and GC keeping exactly the running and last committed trails and their objects. Also: the trend judge
// catches a leak of the size it is meant to catch, and every launcher starts the runtime the same way.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { RUNTIME_ENV, RUNTIME_NODE_ARGS } from '../runtime/node-settings.ts';
import { repoRoot } from './helpers/cli.ts';
import { needTool, tempDir } from './helpers/env.ts';
import { judgeFlat, soakCycles, type SoakSample } from './runtime-fixture.ts';

test('200 update cycles: flat fds and RSS, GC keeps only what it should', { skip: needTool('mksquashfs') }, async (t) => {
  const r = await soakCycles(await tempDir(t), { cycles: 200, rebootEvery: 6, failEvery: 15, inPlaceFrom: 40 });
  t.diagnostic(r.summary);
  assert.deepEqual(r.failures, []);
});

test('the soak judge: noise and a one-off step pass, a leak of 100 KiB per cycle fails, a growing fd count fails', () => {
  // Deterministic noise: ±3 MiB, as GC sawtooth looks in the RSS samples.
  const noise = (i: number) => 3 * Math.sin(i * 2.399);
  const series = (n: number, rss: (i: number) => number, fds: (i: number) => number = () => 24): SoakSample[] =>
    Array.from({ length: n }, (_, i) => ({ cycle: i + 1, pid: 7, fds: fds(i), rssMiB: 60 + rss(i) + noise(i) }));
  assert.deepEqual(judgeFlat(series(160, () => 0)).failures, []);
  assert.deepEqual(judgeFlat(series(160, (i) => (i > 20 ? 12 : 0))).failures, [], 'a step in the first quarter is warm-up');
  const leak = judgeFlat(series(160, (i) => (i * 100) / 1024)).failures;
  assert.equal(leak.length, 1);
  assert.match(leak[0]!, /RSS grows (9|10)\.\d MiB per 100 cycles/);
  assert.match(judgeFlat(series(160, () => 0, (i) => 24 + Math.floor(i / 40))).failures[0]!, /open fds grew 24 → 27/);
  assert.match(judgeFlat(series(30, () => 0)).failures[0]!, /no runtime process served 60 cycles/);
});

test('pv-init and the initrd /init start the runtime with the settings of runtime/node-settings.ts', () => {
  const settings = [...RUNTIME_NODE_ARGS, ...Object.entries(RUNTIME_ENV).map(([k, v]) => `${k}=${v}`)];
  for (const launcher of ['runtime/pv-init', 'runtime/initrd/init.sh']) {
    const text = readFileSync(join(repoRoot, launcher), 'utf8');
    for (const s of settings) assert.ok(text.includes(s), `${launcher} lacks ${s}`);
  }
});
