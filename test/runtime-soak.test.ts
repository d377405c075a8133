// The soak of issue #8: 240 consecutive update cycles in one storage (the issue asks for 200). The first 100
// mix in-place updates, reboot updates (every 10th) and failing revisions that roll back (every 25th); the
// last 140 are in-place only, so one runtime process serves them all and its RSS trend can be judged.
// Judged: open fds flat within every process that served 8 cycles and across restarts, the RSS trend of the
// long-lived process within 8 MiB per 100 cycles, the baseline RSS of the last fresh start within 8 MiB of
// the first's, and GC keeping exactly the running and last committed trails and their objects. Also: the
// judge passes noise and steps and catches a leak of the size it is meant to, and every launcher starts the
// runtime the same way.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { RUNTIME_ENV, RUNTIME_NODE_ARGS } from '../runtime/node-settings.ts';
import { repoRoot } from './helpers/cli.ts';
import { needTool, tempDir } from './helpers/env.ts';
import { judgeFlat, soakCycles, type SoakSample } from './runtime-fixture.ts';

test('240 update cycles: flat fds and RSS, GC keeps only what it should', { skip: needTool('mksquashfs') }, async (t) => {
  const r = await soakCycles(await tempDir(t), { cycles: 240, rebootEvery: 10, failEvery: 25, inPlaceFrom: 100 });
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
  assert.deepEqual(judgeFlat(series(160, (i) => (i > 90 ? 5 : 0))).failures, [], 'a one-off 5 MiB step mid-run stays within the trend limit');
  const leak = judgeFlat(series(160, (i) => (i * 100) / 1024)).failures;
  assert.equal(leak.length, 1);
  assert.match(leak[0]!, /RSS grows (9|10)\.\d MiB per 100 cycles/);
  assert.match(judgeFlat(series(160, () => 0, (i) => 24 + Math.floor(i / 40))).failures[0]!, /open fds grew 24 → 27/);
  assert.match(judgeFlat(series(30, () => 0)).failures[0]!, /no runtime process served 60 cycles/);
});

test('pv-init and the initrd /init start the runtime with the settings of runtime/node-settings.ts', () => {
  const settings = [...RUNTIME_NODE_ARGS, ...Object.entries(RUNTIME_ENV).map(([k, v]) => `${k}=${v}`)];
  for (const launcher of ['runtime/pv-init', 'runtime/initrd/init.sh']) {
    // Commands only: a comment naming a setting must not count for it.
    const text = readFileSync(join(repoRoot, launcher), 'utf8')
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('#'))
      .join('\n');
    for (const s of settings) assert.ok(text.includes(s), `${launcher} lacks ${s}`);
  }
});
