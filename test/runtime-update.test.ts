// Issue 8 flows through the control socket with the process driver (fast, no root needed): in-place and
// reboot updates, DOWNLOADING until objects arrive, refused states and objects, failing tries rolled back, GC.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseJson } from '../src/revision/canonical-json.ts';
import { objectRefs, type State } from '../src/revision/state.ts';
import { Storage } from '../runtime/storage.ts';
import { repoRoot, runCli } from './helpers/cli.ts';
import { needTool, privileged, sh, tempDir } from './helpers/env.ts';
import { buildRevision, ctrl, startRuntime, waitFor, type ContainerDef } from './runtime-fixture.ts';

const loop = 'trap "exit 0" TERM\nwhile :; do sleep 0.1; done\n';
const sys = (tag: string): ContainerDef => ({ name: 'sys', group: 'root', init: `echo sys-${tag}\n` + loop });
const app = (tag: string): ContainerDef => ({ name: 'app', group: 'app', init: `echo app-${tag}\n` + loop });
const opts = ['--commit-delay', '0.3', '--goals-timeout', '4'];

async function progressOf(ctrlPath: string, rev: string): Promise<any> {
  return (await ctrl(ctrlPath, 'GET', `/steps/${rev}/progress`)).json();
}

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, timeoutMs = 15000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function setup(t: TestContext, extra: string[] = []) {
  const dir = await tempDir(t);
  await buildRevision(join(dir, 'r0'), [sys('v1'), app('v1')]);
  const storage = join(dir, 'storage');
  sh(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), 'deploy', join(dir, 'r0/repo'), '--storage', storage]);
  const ctrlPath = join(dir, 'pv-ctrl');
  const boot = () => {
    const rt = startRuntime(storage, ctrlPath, 'process', [...opts, ...extra]);
    t.after(() => rt.child.kill('SIGKILL'));
    return rt;
  };
  return { dir, storage, ctrlPath, boot, st: new Storage(storage) };
}

const stateOf = (repo: string) => parseJson(readFileSync(join(repo, '.pvr/json'))) as State;

test('in-place update: only the changed container restarts, ends UPDATED, not a rollback point; a goal not reached returns to the last DONE revision', { skip: needTool('mksquashfs') }, async (t) => {
  const s = await setup(t);
  const rt = s.boot();
  await waitFor(s.ctrlPath, (cs) => cs.every((c) => c.status === 'STARTED'), 'r0 up');
  await buildRevision(join(s.dir, 'r1'), [sys('v1'), app('v2')]);
  // As an update ships: a pvr export tarball (the later updates below install from the repo directly).
  const exported = await runCli(['export', join(s.dir, 'r1/repo'), '-o', join(s.dir, 'r1.tgz')]);
  assert.equal(exported.code, 0, exported.stderr);
  const inst = await runCli(['pvcontrol', '--socket', s.ctrlPath, 'steps', 'install', join(s.dir, 'r1.tgz'), 'locals/r1', '--json']);
  assert.equal(inst.code, 0, inst.stderr);
  assert.deepEqual(await progressOf(s.ctrlPath, 'locals/r1'), { status: 'NEW', 'status-msg': 'Update ready to be run', progress: 0, retries: 0 });
  const runIt = await runCli(['pvcontrol', '--socket', s.ctrlPath, 'commands', 'run', 'locals/r1']);
  assert.equal(runIt.code, 0, runIt.stderr);
  const seen = new Set<string>();
  const final = await until('UPDATED', async () => {
    const p = await progressOf(s.ctrlPath, 'locals/r1');
    seen.add(`${p.status}:${p['status-msg']}`);
    return p.status === 'UPDATED' ? p : undefined;
  });
  assert.deepEqual(final, { status: 'UPDATED', 'status-msg': 'Update finished, revision not set as rollback point', progress: 100, retries: 1 });
  assert.ok(seen.has('TESTING:Awaiting to see if update is stable'), [...seen].join(' | '));
  const steps = (await ctrl(s.ctrlPath, 'GET', '/steps')).json();
  assert.deepEqual(steps.filter((x: any) => x.current).map((x: any) => x.name), ['locals/r1']);
  // sys kept running from r0 (started once, never in r1's log); app restarted with r1's image.
  const log0 = readFileSync(join(s.storage, 'logs/0/pantavisor/pantavisor.log'), 'utf8');
  const log1 = readFileSync(join(s.storage, 'logs/locals/r1/pantavisor/pantavisor.log'), 'utf8');
  assert.equal(log0.match(/'sys' status is now STARTED/g)?.length, 1);
  assert.doesNotMatch(log1, /'sys' status is now/);
  assert.match(readFileSync(join(s.storage, 'logs/locals/r1/app/lxc/console.log'), 'utf8'), /app-v2/);
  assert.deepEqual(await s.st.readBootEnv(), { pv_rev: '0', pv_try: undefined, pv_trying: undefined }, 'no bootloader commit');
  assert.equal(existsSync(s.st.donePath('locals/r1')), false);

  // An in-place update whose container never reaches READY: ERROR, and the device returns to the last DONE revision.
  await buildRevision(join(s.dir, 'r5'), [sys('v1'), { ...app('v5'), statusGoal: 'READY' }]);
  assert.equal((await runCli(['pvcontrol', '--socket', s.ctrlPath, 'steps', 'install', join(s.dir, 'r5/repo'), 'locals/r5'])).code, 0);
  await ctrl(s.ctrlPath, 'POST', '/commands', { op: 'LOCAL_RUN', payload: 'locals/r5' });
  assert.equal(await rt.exit, 3, 'goals timeout → reboot');
  assert.deepEqual(await s.st.readProgress('locals/r5').then((p) => [p?.status, p?.['status-msg']]), ['ERROR', 'Status goal not reached']);
  const back = s.boot();
  await waitFor(s.ctrlPath, (cs) => cs.every((c) => c.status === 'STARTED'), 'back on 0');
  assert.equal((await ctrl(s.ctrlPath, 'GET', '/steps')).json().find((x: any) => x.current).name, '0');
  await ctrl(s.ctrlPath, 'POST', '/commands', { op: 'POWEROFF_DEVICE' });
  assert.equal(await back.exit, 0);
});

test('reboot update: pv_try, reboot, try, TESTING, commit → DONE; a failing try rolls back with ERROR', { skip: needTool('mksquashfs') }, async (t) => {
  const s = await setup(t);
  let rt = s.boot();
  await waitFor(s.ctrlPath, (cs) => cs.every((c) => c.status === 'STARTED'), 'r0 up');
  await buildRevision(join(s.dir, 'r2'), [sys('v2'), app('v1')]);
  assert.equal((await runCli(['pvcontrol', '--socket', s.ctrlPath, 'steps', 'install', join(s.dir, 'r2/repo'), 'locals/r2'])).code, 0);
  assert.equal((await ctrl(s.ctrlPath, 'POST', '/commands', { op: 'LOCAL_RUN', payload: 'locals/r2' })).status, 200);
  assert.equal(await rt.exit, 3, 'a system container changed: reboot');
  assert.deepEqual(await s.st.readBootEnv(), { pv_rev: '0', pv_try: 'locals/r2', pv_trying: undefined });
  assert.deepEqual(await s.st.readProgress('locals/r2'), { status: 'INPROGRESS', 'status-msg': 'Rebooting', progress: 50, retries: 1 });
  rt = s.boot();
  const done = await until('DONE', async () => {
    const p = await progressOf(s.ctrlPath, 'locals/r2').catch(() => undefined);
    return p?.status === 'DONE' ? p : undefined;
  });
  assert.deepEqual(done, { status: 'DONE', 'status-msg': 'Update finished, revision set as rollback point', progress: 100, retries: 1 });
  assert.deepEqual(await s.st.readBootEnv(), { pv_rev: 'locals/r2', pv_try: undefined, pv_trying: undefined });
  assert.ok(existsSync(s.st.donePath('locals/r2')));
  assert.match(readFileSync(join(s.storage, 'logs/locals/r2/sys/lxc/console.log'), 'utf8'), /sys-v2/);

  // A try whose system container dies: ERROR, reboot, the next boot returns to locals/r2.
  await buildRevision(join(s.dir, 'r3'), [{ name: 'sys', group: 'root', init: 'echo broken >&2\nexit 1\n' }, app('v1')]);
  assert.equal((await runCli(['pvcontrol', '--socket', s.ctrlPath, 'steps', 'install', join(s.dir, 'r3/repo'), 'locals/r3'])).code, 0);
  await ctrl(s.ctrlPath, 'POST', '/commands', { op: 'LOCAL_RUN', payload: 'locals/r3' });
  assert.equal(await rt.exit, 3);
  rt = s.boot();
  assert.equal(await rt.exit, 3, 'the try fails and reboots');
  assert.deepEqual(await s.st.readProgress('locals/r3').then((p) => [p?.status, p?.['status-msg']]), ['ERROR', 'A container could not be started']);
  rt = s.boot();
  await waitFor(s.ctrlPath, (cs) => cs.every((c) => c.status === 'STARTED'), 'back on r2');
  assert.deepEqual(await s.st.readBootEnv(), { pv_rev: 'locals/r2', pv_try: undefined, pv_trying: undefined });
  assert.equal((await ctrl(s.ctrlPath, 'GET', '/steps')).json().find((x: any) => x.current).name, 'locals/r2');

  // GC keeps the running/committed revision only (factory not kept by default) and its objects.
  const gc = await runCli(['pvcontrol', '--socket', s.ctrlPath, 'gc', '--json']);
  assert.equal(gc.code, 0, gc.stderr);
  assert.ok(JSON.parse(gc.stdout).reclaimed > 0);
  assert.deepEqual(await s.st.listRevisions(), ['locals/r2']);
  const keep = [...objectRefs(parseJson(readFileSync(s.st.statePath('locals/r2'))) as State).keys()].sort();
  assert.deepEqual(readdirSync(join(s.storage, 'objects')).sort(), keep);
  await ctrl(s.ctrlPath, 'POST', '/commands', { op: 'POWEROFF_DEVICE' });
  assert.equal(await rt.exit, 0);
});

test('refusals: bad state and bad signature → 422 WONTGO; wrong object bytes → 422; missing objects → DOWNLOADING until they arrive', { skip: needTool('mksquashfs') }, async (t) => {
  const s = await setup(t, ['--secureboot', 'lenient']);
  const rt = s.boot();
  await waitFor(s.ctrlPath, (cs) => cs.every((c) => c.status === 'STARTED'), 'r0 up');
  const bad = await ctrl(s.ctrlPath, 'PUT', '/steps/locals/bad', '{"#spec":"pantavisor-service-system@1","x":');
  assert.equal(bad.status, 422);
  assert.deepEqual([(await progressOf(s.ctrlPath, 'locals/bad')).status, (await progressOf(s.ctrlPath, 'locals/bad'))['status-msg']], ['WONTGO', 'State JSON has bad format']);
  // A pvs@2 signature that does not verify, under the default lenient mode.
  const r0 = stateOf(join(s.dir, 'r0/repo')) as Record<string, unknown>;
  const forged = { ...r0, '_sigs/x.json': { '#spec': 'pvs@2', protected: Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'PVS', pvs: { include: ['app/**'], exclude: [] } })).toString('base64url'), signature: 'AAAA' } };
  const sig = await ctrl(s.ctrlPath, 'PUT', '/steps/locals/forged', forged);
  assert.equal(sig.status, 422);
  assert.match(sig.json().Error, /^Signature validation failed/);
  assert.equal((await progressOf(s.ctrlPath, 'locals/forged'))['status-msg'], 'Signature validation failed');
  assert.equal((await ctrl(s.ctrlPath, 'GET', '/steps/locals/forged')).status, 404, 'refused state deleted');

  // New app image and a new container: their objects are not on the device yet.
  const repo4 = await buildRevision(join(s.dir, 'r4'), [sys('v1'), app('v4'), { name: 'extra', group: 'app', init: 'echo extra\n' + loop }]);
  const st4 = stateOf(repo4);
  assert.equal((await ctrl(s.ctrlPath, 'PUT', '/steps/locals/r4', readFileSync(join(repo4, '.pvr/json'), 'utf8'))).status, 200);
  const t0 = Math.floor(Date.now() / 1000);
  await ctrl(s.ctrlPath, 'POST', '/commands', { op: 'LOCAL_RUN', payload: 'locals/r4' });
  // While DOWNLOADING the progress carries Pantavisor's downloads.total object (reference §8).
  const downloading = async (size: number, downloaded: number) => {
    const p = await progressOf(s.ctrlPath, 'locals/r4');
    const total = p.downloads?.total;
    assert.ok(total && total.start_time >= t0 && total.start_time <= total.current_time && total.current_time <= Date.now() / 1000 + 1, JSON.stringify(p));
    assert.deepEqual(p, {
      status: 'DOWNLOADING',
      'status-msg': 'Downloading update artifacts, retry 0 of 10',
      progress: 25,
      retries: 1,
      downloads: { total: { object_name: 'total', object_id: 'none', total_size: size, total_downloaded: downloaded, start_time: total.start_time, current_time: total.current_time } },
    });
  };
  await downloading(0, 0);
  const sha = st4['app/root.squashfs'] as string;
  const wrong = await ctrl(s.ctrlPath, 'PUT', `/objects/${sha}`, 'not the squashfs');
  assert.equal(wrong.status, 422);
  assert.equal(existsSync(s.st.objects.path(sha)), false, 'wrong bytes never stored');
  await new Promise((r) => setTimeout(r, 300));
  await downloading(0, 0);
  const extra = st4['extra/root.squashfs'] as string;
  const extraBytes = readFileSync(join(repo4, '.pvr/objects', extra));
  assert.equal((await ctrl(s.ctrlPath, 'PUT', `/objects/${extra}`, extraBytes)).status, 200);
  await downloading(extraBytes.length, extraBytes.length);
  for (const h of objectRefs(st4).keys()) {
    if (!(await s.st.objects.has(h))) assert.equal((await ctrl(s.ctrlPath, 'PUT', `/objects/${h}`, readFileSync(join(repo4, '.pvr/objects', h)))).status, 200);
  }
  await until('UPDATED after the objects arrived', async () => ((await progressOf(s.ctrlPath, 'locals/r4')).status === 'UPDATED' ? true : undefined));
  assert.equal((await progressOf(s.ctrlPath, 'locals/r4')).downloads, undefined, 'downloads only while DOWNLOADING');
  await ctrl(s.ctrlPath, 'POST', '/commands', { op: 'POWEROFF_DEVICE' });
  assert.equal(await rt.exit, 0);
});

test('an object that does not fit triggers garbage collection first (PV_STORAGE_GC_RESERVED 5 %)', { skip: privileged('tmpfs mount') || needTool('mksquashfs') }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-gc-'));
  const storage = join(dir, 'storage');
  sh('mkdir', ['-p', storage]);
  // Room for two revisions (≈ 2 × 2 MiB of squashfs) but not three.
  sh('mount', ['-t', 'tmpfs', '-o', 'size=5300k', 'pv-test-storage', storage]);
  let mounted = true;
  const unmount = () => {
    if (mounted) sh('umount', ['-l', storage]);
    mounted = false;
  };
  // After hooks run in registration order: unmount, then remove.
  t.after(unmount);
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { deployFrom } = await import('../runtime/deploy.ts');
  await deployFrom(await buildRevision(join(dir, 'r0'), [sys('a'), app('a')]), storage);
  await deployFrom(await buildRevision(join(dir, 'r1'), [sys('b'), app('b')]), storage, { rev: '1' });
  const st = new Storage(storage);
  await st.writeBootEnv({ pv_rev: '1' }); // as if 1 had been committed by an update
  await st.markDone('1');
  const ctrlPath = join(dir, 'pv-ctrl');
  const rt = startRuntime(storage, ctrlPath, 'namespace', opts);
  t.after(() => rt.child.kill('SIGKILL'));
  await waitFor(ctrlPath, (cs) => cs.every((c) => c.status === 'STARTED'), 'rev 1 up');
  const r2 = await buildRevision(join(dir, 'r2'), [sys('c'), app('c')]);
  const inst = await runCli(['pvcontrol', '--socket', ctrlPath, 'steps', 'install', r2, 'locals/r2']);
  assert.equal(inst.code, 0, inst.stderr);
  assert.match(readFileSync(join(storage, 'logs/1/pantavisor/pantavisor.log'), 'utf8'), /did not fit: garbage collection reclaimed [1-9]\d* bytes/);
  assert.deepEqual(await st.listRevisions(), ['1', 'locals/r2'], 'the factory revision was collected, the new step kept');
  for (const sha of objectRefs(stateOf(r2)).keys()) assert.equal((await st.objects.verify(sha)).status, 'ok');
  await ctrl(ctrlPath, 'POST', '/commands', { op: 'POWEROFF_DEVICE' });
  assert.equal(await rt.exit, 0, rt.stderr());
  unmount();
});
