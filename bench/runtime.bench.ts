// Runtime figures: time from `pvmigrate run` start to all 5 containers STARTED (namespace driver when root,
// target ≤ 1 s), time to stop them all, and the runtime's peak RSS (VmHWM of the node process).
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../test/helpers/cli.ts';
import { sh } from '../test/helpers/env.ts';
import { buildRevision, crashCampaign, ctrl, soakCycles, startRuntime, waitFor } from '../test/runtime-fixture.ts';

const idle = 'trap "exit 0" TERM\nwhile :; do sleep 0.1; done\n';
const five = [
  { name: 'b1', group: 'root', init: idle },
  { name: 'b2', group: 'platform', init: idle },
  { name: 'b3', group: 'platform', init: idle },
  { name: 'b4', group: 'app', init: idle },
  { name: 'b5', group: 'app', init: idle },
];

export async function bench(): Promise<void> {
  const driver = process.getuid?.() === 0 ? 'namespace' : 'process';
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-bench-runtime-'));
  try {
    await buildRevision(dir, five);
    const storage = join(dir, 'storage');
    sh(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), 'deploy', join(dir, 'repo'), '--storage', storage]);
    const ctrlPath = join(dir, 'pv-ctrl');
    for (let round = 1; round <= 3; round++) {
      const t0 = process.hrtime.bigint();
      const rt = startRuntime(storage, ctrlPath, driver);
      await waitFor(ctrlPath, (cs) => cs.length === 5 && cs.every((c) => c.status === 'STARTED'), 'all STARTED');
      const up = Number(process.hrtime.bigint() - t0) / 1e9;
      const hwm = Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${rt.child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
      const t1 = process.hrtime.bigint();
      await ctrl(ctrlPath, 'POST', '/commands', { op: 'POWEROFF_DEVICE' });
      await rt.exit;
      const down = Number(process.hrtime.bigint() - t1) / 1e9;
      // The runtime's own clock: from "booting revision" to the last container STARTED (excludes node/tsx start-up).
      const log = readFileSync(join(storage, 'logs/0/pantavisor/pantavisor.log'), 'utf8').split('\n');
      const at = (l: string | undefined) => Date.parse(l?.split(' ')[1] ?? '');
      const bootLine = log.map((l) => l.includes('booting revision')).lastIndexOf(true);
      const lastStarted = log.slice(bootLine).filter((l) => l.includes('status is now STARTED')).pop();
      const inner = (at(lastStarted) - at(log[bootLine])) / 1000;
      console.log(
        `runtime (${driver} driver) round ${round}: 5 containers STARTED ${up.toFixed(2)} s after process start, ${inner.toFixed(2)} s after boot began (target ≤ 1 s); ` +
          `all stopped in ${down.toFixed(2)} s; runtime peak RSS ${hwm.toFixed(0)} MiB; load average ${loadavg()[0].toFixed(1)}`,
      );
    }
    await updates(dir, driver);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await soak();
  await campaign();
}

/**
 * 600 update cycles in one storage (see soakCycles): 200 mixed ones (a reboot update every 10th, a failing
 * revision every 25th), then 400 in-place ones served by one runtime process, whose RSS trend is judged.
 * Throws when open fds or RSS grow within a runtime process or GC keeps other trails or objects than it should.
 */
async function soak(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-bench-soak-'));
  try {
    const r = await soakCycles(dir, { cycles: 600, rebootEvery: 10, failEvery: 25, inPlaceFrom: 200 });
    console.log(r.summary);
    if (r.failures.length) throw new Error(`soak: ${r.failures.join('; ')}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function progressStatus(ctrlPath: string, rev: string): Promise<string> {
  return (await ctrl(ctrlPath, 'GET', `/steps/${rev}/progress`)).json().status;
}

async function until(f: () => Promise<boolean>): Promise<void> {
  while (!(await f())) await new Promise((r) => setTimeout(r, 20));
}

/** Time to apply an in-place update (LOCAL_RUN → every goal reached, TESTING) and a reboot update (LOCAL_RUN → the try reaches its goals after the restart). */
export async function updates(dir: string, driver: string): Promise<void> {
  const base = five.map((c) => ({ ...c, init: `echo v1\n${c.init}` }));
  const u0 = await buildRevision(join(dir, 'u0'), base);
  const inPlace = await buildRevision(join(dir, 'u1'), base.map((c) => (c.name === 'b5' ? { ...c, init: `echo v2\n${idle}` } : c)));
  const reboot = await buildRevision(join(dir, 'u2'), base.map((c) => (c.name === 'b1' || c.name === 'b5' ? { ...c, init: `echo v3\n${idle}` } : c)));
  const storage = join(dir, 'ustorage');
  sh(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), 'deploy', u0, '--storage', storage]);
  const ctrlPath = join(dir, 'u-ctrl');
  const opts = ['--commit-delay', '0.1'];
  let rt = startRuntime(storage, ctrlPath, driver, opts);
  await waitFor(ctrlPath, (cs) => cs.length === 5 && cs.every((c) => c.status === 'STARTED'), 'up');
  const pvc = (...a: string[]) => sh(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), 'pvcontrol', '--socket', ctrlPath, ...a]);
  pvc('steps', 'install', inPlace, 'locals/u1');
  let t0 = process.hrtime.bigint();
  await ctrl(ctrlPath, 'POST', '/commands', { op: 'LOCAL_RUN', payload: 'locals/u1' });
  await until(async () => ['TESTING', 'UPDATED'].includes(await progressStatus(ctrlPath, 'locals/u1')));
  const applied = Number(process.hrtime.bigint() - t0) / 1e9;
  const hwm = Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${rt.child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  await until(async () => (await progressStatus(ctrlPath, 'locals/u1')) === 'UPDATED');
  pvc('steps', 'install', reboot, 'locals/u2');
  t0 = process.hrtime.bigint();
  await ctrl(ctrlPath, 'POST', '/commands', { op: 'LOCAL_RUN', payload: 'locals/u2' });
  await rt.exit;
  rt = startRuntime(storage, ctrlPath, driver, opts);
  await until(async () => ['TESTING', 'DONE'].includes(await progressStatus(ctrlPath, 'locals/u2').catch(() => '')));
  const rebooted = Number(process.hrtime.bigint() - t0) / 1e9;
  await ctrl(ctrlPath, 'POST', '/commands', { op: 'POWEROFF_DEVICE' });
  await rt.exit;
  console.log(`runtime (${driver} driver): in-place update applied in ${applied.toFixed(2)} s (target ≤ 2 s); reboot update incl. runtime restart ${rebooted.toFixed(2)} s; runtime peak RSS ${hwm.toFixed(0)} MiB`);
}

/**
 * Every durable step of both update kinds, cut right after the step and torn in its middle (process
 * driver). The test suite runs the reboot kind; this runs both. Throws when any point fails.
 */
async function campaign(): Promise<void> {
  const failures: string[] = [];
  let points = 0;
  for (const kind of ['in-place', 'reboot'] as const) {
    const dir = await mkdtemp(join(tmpdir(), `pvmigrate-bench-crash-${kind}-`));
    try {
      const t0 = Date.now();
      const r = await crashCampaign(dir, kind, { modes: ['after', 'torn'] });
      points += r.points.length;
      console.log(`power-cut campaign (${kind} update, cut after and torn in the middle of each step): ${r.points.length} injection points, ${r.failures.length} failures, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      for (const f of r.failures) console.log(`  FAILED ${f}`);
      failures.push(...r.failures);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  console.log(`power-cut campaign: ${points} injection points in all, ${failures.length} failures`);
  if (failures.length) throw new Error(`power-cut campaign: ${failures.length} of ${points} injection points failed:\n${failures.join('\n')}`);
}
