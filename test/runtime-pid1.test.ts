// The runtime as PID 1 of a PID namespace: runtime/pv-init reaps orphans (node alone cannot), mounts what is
// missing, forwards SIGTERM to a clean shutdown.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { repoRoot } from './helpers/cli.ts';
import { needTool, privileged, sh, tempDir } from './helpers/env.ts';
import { buildRevision, ctrl, waitFor } from './runtime-fixture.ts';

/** A container that keeps making orphans: each `sleep` outlives its parent shell and is re-parented to PID 1. */
const orphanMaker = [{ name: 'orph', init: 'trap "exit 0" TERM\nwhile :; do sh -c "sleep 0.05 & exit 0"; sleep 0.1; done\n' }];

function nsInitOf(unsharePid: number): number {
  for (let i = 0; i < 100; i++) {
    try {
      const kids = readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim();
      if (kids) return Number(kids.split(/\s+/)[0]);
    } catch {
      /* not yet */
    }
    sh('sleep', ['0.02']);
  }
  throw new Error('unshare did not fork');
}

/** Zombies among the processes of the PID namespace `ns` (a /proc/<pid>/ns/pid link). */
function zombiesIn(ns: string): string[] {
  const out: string[] = [];
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (readlinkSync(`/proc/${p}/ns/pid`) !== ns) continue;
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      if (/^State:\s+Z/m.test(status)) out.push(`${p} ${/^Name:\s+(\S+)/m.exec(status)?.[1]}`);
    } catch {
      /* exited */
    }
  }
  return out;
}

async function bootInNamespace(t: TestContext, entry: string[]) {
  const dir = await tempDir(t);
  await buildRevision(dir, orphanMaker);
  const storage = join(dir, 'storage');
  sh(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), 'deploy', join(dir, 'repo'), '--storage', storage]);
  const ctrlPath = join(dir, 'pv-ctrl');
  const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', ...entry, '--storage', storage, '--ctrl', ctrlPath, '--driver', 'process', '--secureboot', 'disabled'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout.resume();
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(() => child.kill('SIGKILL'));
  const init = nsInitOf(child.pid!);
  await waitFor(ctrlPath, (cs) => cs[0]?.status === 'STARTED', 'orph started');
  await new Promise((r) => setTimeout(r, 1500)); // ~10 orphans created and exited meanwhile
  return { init, ns: readlinkSync(`/proc/${init}/ns/pid`), exit, stderr: () => err, storage, ctrlPath };
}

test('runtime/pv-init as PID 1 of a PID namespace: orphans reaped, /run mounted, reboot restarts the runtime, SIGTERM stops cleanly', { skip: privileged('pid namespace') || needTool('mksquashfs') }, async (t) => {
  const b = await bootInNamespace(t, [join(repoRoot, 'runtime/pv-init')]);
  assert.match(readFileSync(`/proc/${b.init}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m, 'pv-init is PID 1 inside');
  assert.deepEqual(zombiesIn(b.ns), []);
  // /run was not a mount point on entry (the host's is a plain directory here): the runtime mounted a tmpfs,
  // in the namespace's own mount table only.
  const inside = readFileSync(`/proc/${b.init}/mountinfo`, 'utf8');
  if (!readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === '/run')) {
    assert.ok(inside.split('\n').some((l) => l.split(' ')[4] === '/run' && l.includes(' - tmpfs ')), 'tmpfs on /run inside');
  }
  // A reboot request ends the runtime with status 3: pv-init starts it again, as a fresh boot.
  assert.equal((await ctrl(b.ctrlPath, 'POST', '/commands', { op: 'REBOOT_DEVICE' })).status, 200);
  await waitFor(b.ctrlPath, () => /pv-init: runtime asked for a reboot/.test(b.stderr()), 'the restart');
  await waitFor(b.ctrlPath, (cs) => cs[0]?.status === 'STARTED', 'orph started again');
  assert.equal(readFileSync(join(b.storage, 'logs/0/pantavisor/pantavisor.log'), 'utf8').match(/booting revision 0/g)?.length, 2);
  process.kill(b.init, 'SIGTERM');
  assert.equal(await b.exit, 0, b.stderr());
  assert.match(b.stderr(), /stopped on SIGTERM/);
  assert.match(readFileSync(join(b.storage, 'logs/0/pantavisor/pantavisor.log'), 'utf8'), /SIGTERM received: stopping every container[^]*'orph' status is now STOPPED[^]*stopped\n$/);
});

test('control: node itself as PID 1 leaves the same orphans as zombies (why pv-init exists)', { skip: privileged('pid namespace') || needTool('mksquashfs') }, async (t) => {
  const b = await bootInNamespace(t, [process.execPath, join(repoRoot, 'bin/pvmigrate.js'), 'run']);
  assert.ok(zombiesIn(b.ns).length >= 3, `expected zombies under node as PID 1, found ${zombiesIn(b.ns).length}`);
  process.kill(b.init, 'SIGTERM');
  assert.equal(await b.exit, 0, b.stderr());
});

test('pv-init runs the command PV_RUNTIME names instead of this checkout\'s node, and restarts it on exit 3', async (t) => {
  const dir = await tempDir(t);
  // A stand-in runtime: records its arguments, asks for one reboot (exit 3), then powers off (exit 0).
  const fake = join(dir, 'fake-runtime.sh');
  writeFileSync(fake, `echo "$*" >> ${join(dir, 'calls')}\n[ -e ${join(dir, 'booted')} ] && exit 0\ntouch ${join(dir, 'booted')}\nexit 3\n`);
  const out = spawnSync(join(repoRoot, 'runtime/pv-init'), ['--storage', join(dir, 'storage')], { env: { ...process.env, PV_RUNTIME: `sh ${fake} --extra` }, encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  const args = `--extra run --storage ${join(dir, 'storage')}`;
  assert.deepEqual(readFileSync(join(dir, 'calls'), 'utf8').split('\n'), [args, args, '']);
  assert.match(out.stderr, /pv-init: runtime asked for a reboot; starting it again/);
});
