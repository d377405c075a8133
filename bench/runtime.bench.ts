// Runtime figures: time from `pvmigrate run` start to all 5 containers STARTED (namespace driver when root,
// target ≤ 1 s), time to stop them all, and the runtime's peak RSS (VmHWM of the node process).
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync, readdirSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../test/helpers/cli.ts';
import { sh } from '../test/helpers/env.ts';
import { Storage } from '../runtime/storage.ts';
import { buildRevision, crashCampaign, ctrl, startRuntime, waitFor } from '../test/runtime-fixture.ts';

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
  await soak(200, 0, 0);
  await campaign();
}

/**
 * 200 update cycles in one storage: in-place app flips, a reboot (system container) flip every 10th cycle,
 * a failing revision (READY never signalled) every 25th; then GC. Prints open fds and RSS at the start
 * and end of the run, and what storage holds after GC against what it should.
 */
export async function soak(cycles = 200, rebootEvery = 10, failEvery = 25): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-bench-soak-'));
  try {
    const combos: Record<string, string> = {};
    for (const sysV of ['A', 'B']) {
      for (const appV of ['A', 'B', 'F']) {
        combos[`${sysV}${appV}`] = await buildRevision(join(dir, `${sysV}${appV}`), [
          { name: 'sys', group: 'root', init: `echo sys${sysV}\n${idle}` },
          { name: 'app', group: 'app', init: `echo app${appV}\n${idle}`, statusGoal: appV === 'F' ? 'READY' : undefined },
        ]);
      }
    }
    const sigOf = (repo: string) => {
      const st = JSON.parse(readFileSync(join(repo, '.pvr/json'), 'utf8')) as Record<string, string>;
      return `${st['sys/root.squashfs']}|${st['app/root.squashfs']}`;
    };
    const bySig = new Map(Object.entries(combos).map(([k, repo]) => [sigOf(repo), k]));
    const storage = join(dir, 'storage');
    sh(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), 'deploy', combos.AA, '--storage', storage]);
    const ctrlPath = join(dir, 'pv-ctrl');
    const opts = ['--commit-delay', '0', '--goals-timeout', '2'];
    const boot = async () => {
      const r = startRuntime(storage, ctrlPath, 'process', opts);
      await waitFor(ctrlPath, (cs) => cs.length === 2 && cs.every((c) => c.status === 'STARTED'), 'soak up', 30000);
      return r;
    };
    const sample = (pid: number) => ({ fds: readdirSync(`/proc/${pid}/fd`).length, rss: Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024 });
    let rt = await boot();
    let first = sample(rt.child.pid!);
    let firstPid = rt.child.pid!;
    let restarts = 0;
    const sleep = (ms: number) => new Promise<false>((r) => setTimeout(() => r(false), ms));
    const currentRev = async () => ((await ctrl(ctrlPath, 'GET', '/steps')).json() as { name: string; current: boolean }[]).find((x) => x.current)!.name;
    // Until `rev` is final and the device runs a committed or updated revision, restarting the runtime on reboots.
    const stable = async (rev: string) => {
      for (;;) {
        if (await Promise.race([rt.exit.then(() => true), sleep(50)])) {
          restarts++;
          rt = await boot();
          continue;
        }
        const p = await progressStatus(ctrlPath, rev).catch(() => '');
        const env = await new Storage(storage).readBootEnv();
        if (env.pv_try) continue;
        if (p === 'UPDATED' || p === 'DONE') return;
        if (p === 'ERROR') {
          if ((await currentRev().catch(() => rev)) !== rev) return;
          if (await Promise.race([rt.exit.then(() => true), sleep(5000)])) {
            restarts++;
            rt = await boot();
          }
          return;
        }
      }
    };
    const t0 = Date.now();
    for (let i = 1; i <= cycles; i++) {
      const steps = (await ctrl(ctrlPath, 'GET', '/steps')).json() as { name: string; current: boolean }[];
      const cur = steps.find((x) => x.current)!.name;
      const combo = bySig.get(sigOf(join(storage, 'trails', cur)))!;
      const target = failEvery && i % failEvery === 0 ? `${combo[0]}F` : rebootEvery && i % rebootEvery === 0 ? `${combo[0] === 'A' ? 'B' : 'A'}${combo[1]}` : `${combo[0]}${combo[1] === 'A' ? 'B' : 'A'}`;
      const rev = `locals/c${i}`;
      const repo = combos[target];
      await ctrl(ctrlPath, 'PUT', `/steps/${rev}`, readFileSync(join(repo, '.pvr/json')));
      for (const sha of readdirSync(join(repo, '.pvr/objects'))) await ctrl(ctrlPath, 'PUT', `/objects/${sha}`, readFileSync(join(repo, '.pvr/objects', sha)));
      await ctrl(ctrlPath, 'POST', '/commands', { op: 'LOCAL_RUN', payload: rev });
      await stable(rev);
      if (i === 10) {
        // After a warm-up: what the same process holds 190 cycles later is the leak figure.
        first = sample(rt.child.pid!);
        firstPid = rt.child.pid!;
      }
    }
    const last = sample(rt.child.pid!);
    const gc = (await ctrl(ctrlPath, 'POST', '/storage/gc')).json();
    const st = new Storage(storage);
    const env = await st.readBootEnv();
    const current = ((await ctrl(ctrlPath, 'GET', '/steps')).json() as { name: string; current: boolean }[]).find((x) => x.current)!.name;
    const revs = await st.listRevisions();
    const should = [...new Set([current, env.pv_rev])].sort();
    console.log(
      `soak: ${cycles} update cycles (reboot every ${rebootEvery || '—'}, failing every ${failEvery || '—'}; ${restarts} runtime restarts) in ${((Date.now() - t0) / 1000).toFixed(0)} s; ` +
        `open fds ${first.fds} → ${last.fds}, RSS ${first.rss.toFixed(0)} → ${last.rss.toFixed(0)} MiB (${rt.child.pid === firstPid ? 'same runtime process, cycle 10 → end' : 'cycle-10 process vs last process'}); ` +
        `GC reclaimed ${gc.reclaimed} bytes, trails kept [${revs.join(', ')}] (should be [${should.join(', ')}])`,
    );
    await ctrl(ctrlPath, 'POST', '/commands', { op: 'POWEROFF_DEVICE' });
    await rt.exit;
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
