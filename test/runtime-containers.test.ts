// Boots real busybox revisions with both drivers and checks them from outside: through the control socket,
// the container consoles, the host's /proc, mount table and loop devices.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot, runCli } from './helpers/cli.ts';
import { needTool, privileged, sh, tempDir } from './helpers/env.ts';
import { buildRevision, ctrl, startRuntime, waitFor, type ContainerDef } from './runtime-fixture.ts';

// Scripts run under both drivers: PV_ROOT / PV_CTRL are only set by the process driver.
const prelude = 'R="${PV_ROOT:-}"; CTRL="${PV_CTRL:-/pantavisor/pv-ctrl}"; trap "exit 0" TERM\n';
const idle = 'while :; do sleep 0.1; done\n';

const fiveContainers: ContainerDef[] = [
  { name: 'data1', group: 'data', init: prelude + 'echo data-started\n' + idle },
  {
    name: 'base',
    group: 'root',
    init: prelude + 'echo "whoami pid=$$ hostname=$(hostname) init=$(cat /proc/1/comm)"\nfor i in 1 2 3; do sh -c "sleep 0.2 & exit 0"; done\necho orphans-made\n' + idle,
  },
  {
    name: 'plat',
    group: 'platform',
    overlay: 'permanent',
    config: { 'etc/pv-test.conf': 'from-config-overlay\n' },
    // A pvr docker volume: permanent storage bind-mounted by an lxc.mount.entry; and an extra squashfs of
    // run.json `volumes`, bound read-only into the root the same way (mount entries: namespace driver only).
    volumes: { 'docker--data': 'permanent' },
    images: { 'assets.squashfs': { 'fonts/hello.txt': 'from an extra volume' } },
    lxcExtra: ['lxc.mount.entry = /volumes/plat/docker--data data none bind,rw,create=dir 0 0', 'lxc.mount.entry = /volumes/plat/assets.squashfs opt/assets none bind,ro,create=dir 0 0'],
    init: prelude + 'echo "config=$(cat $R/etc/pv-test.conf)"\nn=$(cat $R/var/boots 2>/dev/null || echo 0); n=$((n+1)); echo $n > $R/var/boots; mkdir -p $R/data; echo $n > $R/data/volume-boots; echo boots=$n\n' + 'echo "asset=$(cat $R/opt/assets/fonts/hello.txt 2>/dev/null || echo none) writable=$(touch $R/opt/assets/x 2>/dev/null && echo yes || echo no)"\n' + idle,
  },
  {
    name: 'ready',
    group: 'app',
    statusGoal: 'READY',
    curl: true,
    init:
      prelude +
      '[ -e $R/tmp/boot-marker ] && echo boot-marker=present || echo boot-marker=absent\ntouch $R/tmp/boot-marker\n' +
      'sleep 0.3\ncurl -s -X POST --unix-socket "$CTRL" -H "Content-Type: application/json" -d \'{"type":"ready","payload":""}\' http://localhost/signal && echo signalled\n' +
      idle,
  },
  {
    name: 'crash',
    group: 'app',
    autoRecovery: { policy: 'on-failure', max_retries: 3, retry_delay: 0.2, backoff_factor: 2 },
    init: prelude + 'if [ -e $R/tmp/crashed ]; then echo recovered; else touch $R/tmp/crashed; echo crashing; exit 3; fi\n' + idle,
  },
];

const byName = (cs: any[]) => Object.fromEntries(cs.map((c) => [c.name, c.status]));
const allAtGoal = (cs: any[]) => cs.length === 5 && cs.every((c) => c.status === c.status_goal || (c.status_goal === 'STARTED' && c.status === 'READY'));

function consoleOf(storage: string, c: string): string {
  return readFileSync(join(storage, 'logs/0', c, 'lxc/console.log'), 'utf8');
}

/** A container's console eventually matches `re` (STARTED means exec'd, not that its first echo landed). */
async function expectConsole(storage: string, c: string, re: RegExp): Promise<void> {
  for (let i = 0; i < 200 && !re.test(consoleOf(storage, c)); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(consoleOf(storage, c), re);
}

/** pids of `root` and all its descendants, from the host's /proc. */
function descendants(root: number): Set<number> {
  const parent = new Map<number, number>();
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      parent.set(Number(p), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* exited */
    }
  }
  const out = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, pp] of parent) if (out.has(pp) && !out.has(pid)) out.add(pid), (grew = true);
  }
  return out;
}

/** Zombies among `pids`, as "pid@starttime" (a pid reused later is another process). */
function zombiesAmong(pids: Set<number>): string[] {
  return [...pids].flatMap((p) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return fields[0] === 'Z' ? [`${p}@${fields[19]}`] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Zombies under `root` that nobody reaps: seen in two samples `gapMs` apart. A container's own shell
 * loop (`sleep 0.1`) makes zombies that live for microseconds until the shell reaps them; only one that
 * outlives the gap means a missing reaper.
 */
async function lingeringZombies(root: number, gapMs = 500): Promise<string[]> {
  const first = zombiesAmong(descendants(root));
  await new Promise((r) => setTimeout(r, gapMs));
  const second = new Set(zombiesAmong(descendants(root)));
  return first.filter((z) => second.has(z));
}

/** The host's mounts and loop devices that involve `dir` (other test files may mount elsewhere meanwhile). */
function hostSnapshot(dir: string): { mounts: string[]; loops: string[]; hostname: string } {
  const mine = (text: string) => text.split('\n').filter((l) => l.includes(dir));
  return { mounts: mine(readFileSync('/proc/self/mountinfo', 'utf8')), loops: mine(sh('losetup', ['-a'])), hostname: sh('hostname', []) };
}

async function scenario(t: import('node:test').TestContext, driver: 'namespace' | 'process'): Promise<void> {
  const dir = await tempDir(t);
  await buildRevision(dir, fiveContainers);
  const storage = join(dir, 'storage');
  sh(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), 'deploy', join(dir, 'repo'), '--storage', storage]);
  const ctrlPath = join(dir, 'pv-ctrl');
  const before = hostSnapshot(dir);
  const outside = (await readdir(dir)).sort();

  const rt = startRuntime(storage, ctrlPath, driver);
  t.after(() => rt.child.kill('SIGKILL'));
  const cs = await waitFor(ctrlPath, allAtGoal, 'every status goal');
  assert.deepEqual(hostSnapshot(dir).mounts, [], 'container mounts live in private mount namespaces only');
  assert.deepEqual(byName(cs), { data1: 'MOUNTED', base: 'STARTED', plat: 'STARTED', ready: 'READY', crash: 'STARTED' });

  // Groups started in order: data, root, platform, app.
  const log = readFileSync(join(storage, 'logs/0/pantavisor/pantavisor.log'), 'utf8');
  const order = [...log.matchAll(/starting group '(\w+)'/g)].map((m) => m[1]);
  assert.deepEqual(order, ['data', 'root', 'platform', 'app']);
  assert.match(log, /'crash' exited with status 3; auto-recovery 1\/3 in 0.2 s/);

  // Consoles: MOUNTED goal never ran its init; _config visible; READY sent from inside; crash recovered.
  assert.equal(consoleOf(storage, 'data1'), '');
  await expectConsole(storage, 'plat', /config=from-config-overlay\nboots=1\n/);
  await expectConsole(storage, 'ready', /boot-marker=absent\n[^]*signalled/);
  await expectConsole(storage, 'crash', /crashing\nrecovered\n/);
  if (driver === 'namespace') {
    // Its own PID namespace (the init is PID 1) and UTS namespace (hostname = container name).
    await expectConsole(storage, 'base', /whoami pid=1 hostname=base init=sh\n/);
    await expectConsole(storage, 'plat', /asset=from an extra volume writable=no\n/);
    assert.deepEqual(hostSnapshot(dir).hostname, before.hostname);
  }

  // Orphaned grandchildren exited: no zombie anywhere under the runtime.
  await waitFor(ctrlPath, () => consoleOf(storage, 'base').includes('orphans-made'), 'orphans');
  await new Promise((r) => setTimeout(r, 600));
  assert.deepEqual(await lingeringZombies(rt.child.pid!), []);

  // Control endpoints, shaped as Pantavisor's.
  const containers = (await ctrl(ctrlPath, 'GET', '/containers')).json();
  assert.deepEqual(containers.find((c: any) => c.name === 'ready'), { name: 'ready', group: 'app', status: 'READY', status_goal: 'READY', restart_policy: 'container', roles: [] });
  const groups = (await ctrl(ctrlPath, 'GET', '/groups')).json();
  assert.deepEqual(groups.map((g: any) => [g.name, g.status.map((s: any) => s.name)]), [['data', ['data1']], ['root', ['base']], ['platform', ['plat']], ['app', ['crash', 'ready']]]);
  const steps = (await ctrl(ctrlPath, 'GET', '/steps')).json();
  assert.deepEqual(steps.map((s: any) => [s.name, s.status, s.current]), [['0', 'DONE', true]]);
  const stepState = await ctrl(ctrlPath, 'GET', '/steps/0');
  assert.equal(stepState.body, readFileSync(join(dir, 'repo/.pvr/json'), 'utf8'));
  assert.deepEqual((await ctrl(ctrlPath, 'GET', '/steps/0/progress')).json(), { status: 'DONE', 'status-msg': 'Factory revision', progress: 100, retries: 0 });
  assert.equal((await ctrl(ctrlPath, 'GET', '/steps/7')).status, 404);
  assert.equal((await ctrl(ctrlPath, 'GET', '/buildinfo')).json().name, 'pvmigrate');
  const forbidden = await ctrl(ctrlPath, 'PUT', '/containers/base', { action: 'stop' });
  assert.equal(forbidden.status, 403);
  assert.match(forbidden.json().Error, /restart_policy 'system'/);
  assert.equal((await ctrl(ctrlPath, 'PUT', '/containers/nope', { action: 'stop' })).status, 404);
  assert.equal((await ctrl(ctrlPath, 'POST', '/signal', { type: 'ready' })).status, 400, 'the device socket is not a container');
  assert.equal((await ctrl(ctrlPath, 'PUT', '/containers/crash', { action: 'stop' })).status, 200);
  assert.equal(byName(await waitFor(ctrlPath, (c) => byName(c).crash === 'STOPPED', 'crash stopped')).crash, 'STOPPED');
  assert.equal((await ctrl(ctrlPath, 'PUT', '/containers/crash', { action: 'start' })).status, 200);
  await waitFor(ctrlPath, (c) => byName(c).crash === 'STARTED', 'crash started again');
  assert.equal((await ctrl(ctrlPath, 'PUT', '/containers/crash', { action: 'restart' })).status, 200);
  await waitFor(ctrlPath, (c) => byName(c).crash === 'STARTED', 'crash restarted');
  // pvcontrol verbs map onto the same endpoints.
  const ls = await runCli(['pvcontrol', '--socket', ctrlPath, 'ls', '--json']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.deepEqual(JSON.parse(ls.stdout), (await ctrl(ctrlPath, 'GET', '/containers')).json());
  const denied = await runCli(['pvcontrol', '--socket', ctrlPath, 'containers', 'stop', 'base']);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /answered 403: Container has restart_policy 'system'/);
  const prog = await runCli(['pvcontrol', '--socket', ctrlPath, 'steps', 'show-progress', '0', '--json']);
  assert.equal(JSON.parse(prog.stdout).status, 'DONE');
  const off = await runCli(['pvcontrol', '--socket', ctrlPath, 'commands', 'poweroff', 'test', 'done']);
  assert.equal(off.code, 0, off.stderr);
  assert.equal(await rt.exit, 0, rt.stderr());
  assert.match(readFileSync(join(storage, 'logs/0/pantavisor/pantavisor.log'), 'utf8'), /POWEROFF_DEVICE requested: test done/);

  // Second boot: the permanent overlay kept its file, the boot overlay did not.
  const rt2 = startRuntime(storage, ctrlPath, driver);
  t.after(() => rt2.child.kill('SIGKILL'));
  await waitFor(ctrlPath, allAtGoal, 'every status goal, second boot');
  await expectConsole(storage, 'plat', /boots=1\n[^]*boots=2\n/);
  if (driver === 'namespace') assert.equal(readFileSync(join(storage, 'disks/perm/plat/docker--data/volume-boots'), 'utf8'), '2\n', 'volume bound from disks/perm');
  await expectConsole(storage, 'ready', /boot-marker=absent\n[^]*boot-marker=absent\n/);
  assert.equal((await ctrl(ctrlPath, 'POST', '/commands', { op: 'REBOOT_DEVICE' })).status, 200);
  assert.equal(await rt2.exit, 3, 'reboot asks the supervisor for a fresh start');

  // Nothing left behind on the host: mounts, loop devices, files outside storage.
  await new Promise((r) => setTimeout(r, 300));
  const after = hostSnapshot(dir);
  assert.deepEqual(after.mounts, before.mounts);
  assert.deepEqual(after.loops, before.loops);
  assert.deepEqual(before.mounts, [], 'nothing of ours was mounted on the host before');
  assert.deepEqual((await readdir(dir)).sort(), outside);
}

test('namespace driver: five containers across groups, READY, auto-recovery, overlays, namespaces, ctrl, clean host', { skip: privileged('namespaces, loop and overlay mounts') || needTool('mksquashfs') || needTool('curl') }, (t) =>
  scenario(t, 'namespace'),
);

test('process driver: the same lifecycle without root', { skip: needTool('mksquashfs') || needTool('curl') }, (t) => scenario(t, 'process'));

test('the zombie check sees a zombie nobody reaps, and not one its parent reaps at once', async () => {
  // The shell's background child exits; the shell exec's into a sleep that never waits: a lingering zombie.
  const stuck = spawn('sh', ['-c', 'sleep 0.01 & exec sleep 3'], { stdio: 'ignore' });
  // A shell loop like the containers': its short-lived children are reaped right away.
  const busy = spawn('sh', ['-c', 'for i in $(seq 30); do sleep 0.05; done'], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await lingeringZombies(stuck.pid!)).length, 1);
    assert.deepEqual(await lingeringZombies(busy.pid!), []);
  } finally {
    stuck.kill('SIGKILL');
    busy.kill('SIGKILL');
  }
});
