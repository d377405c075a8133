// Storage layout, deploy, boot selection and the refusals of verifyRevision (no containers started here).
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { copyFile, mkdir, readFile, readdir, stat, unlink, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportRepo } from '../src/revision/export.ts';
import { openRepo } from '../src/revision/pvr-repo.ts';
import { signState } from '../src/revision/signature.ts';
import { verifyRevision, selectRevision } from '../runtime/boot.ts';
import { deployFrom } from '../runtime/deploy.ts';
import { parseLxcConfig } from '../runtime/lxc-config.ts';
import { RuntimeLog } from '../runtime/log.ts';
import { planRevision } from '../runtime/platforms.ts';
import { Storage } from '../runtime/storage.ts';
import { repoRoot, runCli } from './helpers/cli.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';
import { buildRevision } from './runtime-fixture.ts';

const quiet = new RuntimeLog(false);
const one = [{ name: 'app', init: 'exec sleep 100\n', config: { 'etc/app.conf': 'x=1\n' } }];

test('deploy writes Pantavisor storage: objects, trail hard links, inline JSON, progress, done, boot env', { skip: needTool('mksquashfs') }, async (t) => {
  const dir = await tempDir(t);
  const repo = await buildRevision(dir, one);
  const storageDir = join(dir, 'storage');
  const r = await runCli(['deploy', repo, '--storage', storageDir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { rev: '0', objects: 3, objectsAdded: 3, bootEnvUpdated: true });
  const storage = new Storage(storageDir);
  const stateText = await readFile(join(repo, '.pvr/json'), 'utf8');
  assert.equal(await readFile(storage.statePath('0'), 'utf8'), stateText, 'state stored byte for byte');
  const state = JSON.parse(stateText) as Record<string, unknown>;
  for (const [key, value] of Object.entries(state)) {
    if (key === '#spec') continue;
    const trail = join(storage.trailDir('0'), key);
    if (typeof value === 'string') {
      const [a, b] = await Promise.all([stat(trail), stat(join(storageDir, 'objects', value))]);
      assert.equal(a.ino, b.ino, `${key} is a hard link to objects/${value}`);
      assert.equal(sh('sha256sum', [trail]).split(' ')[0], value, `${key} hashes to its object name`);
    } else assert.deepEqual(JSON.parse(await readFile(trail, 'utf8')), value, `${key} written out`);
  }
  assert.deepEqual(JSON.parse(await readFile(storage.progressPath('0'), 'utf8')), { status: 'DONE', 'status-msg': 'Factory revision', progress: 100, retries: 0 });
  assert.equal((await stat(storage.donePath('0'))).size, 0);
  const env = await readFile(join(storageDir, 'boot/uboot.txt'));
  assert.equal(env.length, 1024);
  assert.equal(sh('sh', ['-c', `tr '\\0' '\\n' < ${join(storageDir, 'boot/uboot.txt')} | grep .`]), 'pv_rev=0\n');
  assert.deepEqual(await readdir(storageDir).then((l) => l.sort()), ['boot', 'objects', 'trails']);
});

test('deploy of an export tarball into a named local revision keeps the boot revision', { skip: needTool('mksquashfs') }, async (t) => {
  const dir = await tempDir(t);
  const repo = await buildRevision(dir, one);
  const tgz = join(dir, 'rev.tgz');
  await exportRepo(await openRepo(repo), tgz);
  const storageDir = join(dir, 'storage');
  await deployFrom(repo, storageDir);
  const r = await deployFrom(tgz, storageDir, { rev: 'locals/next' });
  assert.deepEqual(r, { rev: 'locals/next', objects: 3, objectsAdded: 0, bootEnvUpdated: false });
  const storage = new Storage(storageDir);
  assert.deepEqual(await storage.listRevisions(), ['0', 'locals/next']);
  assert.equal((await storage.readBootEnv()).pv_rev, '0');
  assert.equal((await storage.readProgress('locals/next'))?.status, 'NEW');
  assert.deepEqual(await readdir(storageDir).then((l) => l.filter((n) => n.startsWith('.import'))), [], 'scratch import removed');
  const bad = await runCli(['deploy', repo, '--storage', storageDir, '--rev', 'locals/a/b']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /neither an integer nor locals\/<name>/);
});

test('boot selection follows pv_rev, pv_try and the pv_trying marker', async (t) => {
  const storage = new Storage(await tempDir(t));
  await storage.writeBootEnv({ pv_rev: '0' });
  assert.deepEqual(await selectRevision(storage), { rev: '0', trying: false });
  await storage.writeBootEnv({ pv_rev: '0', pv_try: '1' });
  assert.deepEqual(await selectRevision(storage), { rev: '1', trying: true });
  assert.deepEqual(await storage.readBootEnv(), { pv_rev: '0', pv_try: '1', pv_trying: '1' }, 'marker set before handing over');
  // The try never committed: the next boot falls back to pv_rev.
  assert.deepEqual(await selectRevision(storage), { rev: '0', trying: false, rolledBackFrom: '1' });
});

test('boot refuses a corrupted object with the reason in progress and log, and relinks missing trail links', { skip: needTool('mksquashfs') }, async (t) => {
  const dir = await tempDir(t);
  const storageDir = join(dir, 'storage');
  await deployFrom(await buildRevision(dir, one), storageDir);
  const storage = new Storage(storageDir);
  const log = new RuntimeLog(false);
  log.attach(storage.logsDir('0'));
  // A missing trail link is repaired, as the same inode as the object.
  const conf = join(storage.trailDir('0'), 'app/lxc.container.conf');
  await unlink(conf);
  const ok = await verifyRevision(storage, '0', log, { secureboot: 'lenient', checksum: true });
  assert.deepEqual(ok.relinked, ['app/lxc.container.conf']);
  const state = ok.state as Record<string, string>;
  assert.equal((await stat(conf)).ino, (await stat(storage.objects.path(state['app/lxc.container.conf']))).ino);
  // Flip one byte of the squashfs object (same size): only a re-hash notices.
  const obj = storage.objects.path(state['app/root.squashfs']);
  await chmod(obj, 0o644);
  const buf = await readFile(obj);
  buf[buf.length - 100] ^= 0xff;
  await writeFile(obj, buf);
  await assert.rejects(verifyRevision(storage, '0', log, { secureboot: 'disabled', checksum: true }), /Object validation went wrong: object [0-9a-f]{64} of 'app\/root.squashfs' is corrupt/);
  const progress = await storage.readProgress('0');
  assert.equal(progress?.status, 'ERROR');
  assert.equal(progress?.['status-msg'], 'Object validation went wrong');
  assert.match(await readFile(log.path!, 'utf8'), /ERROR.*revision 0 refused: Object validation went wrong/);
  // quickboot skips the re-hash, as PV_SECUREBOOT_CHECKSUM=0 does.
  await verifyRevision(storage, '0', log, { secureboot: 'disabled', checksum: false });
  // Through the CLI: exit 1 and the reason on stderr.
  const r = await runCli(['run', '--storage', storageDir, '--driver', 'process', '--ctrl', join(dir, 'ctrl'), '--secureboot', 'disabled']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /Object validation went wrong/);
});

test('secure boot: strict refuses unsigned and tampered states, accepts a fully covered signed one', { skip: needTool('mksquashfs') }, async (t) => {
  const dir = await tempDir(t);
  const repoDir = await buildRevision(dir, one);
  const storageDir = join(dir, 'storage');
  const storage = new Storage(storageDir);
  await deployFrom(repoDir, storageDir);
  await assert.rejects(verifyRevision(storage, '0', quiet, { secureboot: 'strict', checksum: true }), /State not fully covered by signatures/);
  await verifyRevision(storage, '0', quiet, { secureboot: 'lenient', checksum: true });

  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const repo = await openRepo(repoDir);
  const signed = signState(await repo.readState(), { name: 'all', key: privateKey, match: { include: ['#spec', 'app/**', '_config/app/**'], exclude: [] } });
  await repo.writeState(signed.state);
  await deployFrom(repoDir, storageDir, { rev: '1' });
  await verifyRevision(storage, '1', quiet, { secureboot: 'strict', checksum: true });

  // Tamper with a covered inline JSON in the stored state: the signature no longer matches.
  const text = await readFile(storage.statePath('1'), 'utf8');
  await writeFile(storage.statePath('1'), text.replace('"name":"app"', '"name":"app","status_goal":"READY"'));
  await assert.rejects(verifyRevision(storage, '1', quiet, { secureboot: 'strict', checksum: true }), /Signature validation failed/);
  assert.equal((await storage.readProgress('1'))?.['status-msg'], 'Signature validation failed');
});

test('lxc.container.conf: the pvr template subset is applied, unknown keys reported', () => {
  const conf = [
    'lxc.tty.max = 4',
    'lxc.rootfs.path = overlayfs:/volumes/web/root.squashfs:/volumes/web/lxc-overlay/upper',
    'lxc.init.cmd = /docker-entrypoint.sh "nginx" "-g" "daemon off;"',
    'lxc.environment = PATH=/usr/sbin:/usr/bin',
    'lxc.namespace.keep = user net ipc',
    'lxc.mount.auto = proc sys:rw cgroup-full',
    'lxc.mount.entry = /volumes/web/docker--var-www var/www none bind,rw,create=dir 0 0',
    'lxc.uts.name = webhost',
    'lxc.cap.drop = sys_module mac_admin',
    'lxc.frobnicate = 1',
  ].join('\n');
  const c = parseLxcConfig(conf);
  assert.deepEqual(c.initCmd, ['/docker-entrypoint.sh', 'nginx', '-g', 'daemon off;']);
  assert.deepEqual(c.rootfs, { kind: 'overlayfs', lower: '/volumes/web/root.squashfs', upper: '/volumes/web/lxc-overlay/upper' });
  assert.deepEqual(c.environment, { PATH: '/usr/sbin:/usr/bin' });
  assert.deepEqual(c.namespaceKeep, ['user', 'net', 'ipc']);
  assert.deepEqual(c.mountAuto, ['proc', 'sys:rw', 'cgroup-full']);
  assert.deepEqual(c.mountEntries, [{ source: '/volumes/web/docker--var-www', target: 'var/www', fstype: 'none', options: ['bind', 'rw', 'create=dir'] }]);
  assert.equal(c.utsName, 'webhost');
  assert.deepEqual(c.capDrop, ['sys_module', 'mac_admin']);
  assert.deepEqual(c.ignored, ['lxc.tty.max']);
  assert.deepEqual(c.unknown, ['lxc.frobnicate']);
  assert.throws(() => parseLxcConfig('lxc.init.cmd = /bin/sh "-c'), /unterminated " quote/);
});

test('groups and defaults: first unassigned container becomes root, app recovery defaults, device.json groups', async () => {
  const obj = 'a'.repeat(64);
  const c = (name: string, extra: Record<string, unknown> = {}) => ({
    [`${name}/run.json`]: { '#spec': 'service-manifest-run@1', name, type: 'lxc', config: 'lxc.container.conf', 'root-volume': 'root.squashfs', ...extra },
    [`${name}/lxc.container.conf`]: obj,
    [`${name}/root.squashfs`]: obj,
  });
  const plan = planRevision({ '#spec': 'pantavisor-service-system@1', ...c('zed'), ...c('alpha'), ...c('web', { group: 'app' }) } as never);
  assert.deepEqual(
    plan.platforms.map((p) => [p.name, p.group, p.statusGoal, p.restartPolicy, p.autoRecovery.policy]),
    [
      ['alpha', 'root', 'STARTED', 'system', 'no'],
      ['zed', 'platform', 'STARTED', 'system', 'no'],
      ['web', 'app', 'STARTED', 'container', 'on-failure'],
    ],
  );
  assert.deepEqual(plan.platforms[2].autoRecovery, { policy: 'on-failure', maxRetries: 5, retryDelay: 5, backoffFactor: 2 });
  const custom = planRevision({
    '#spec': 'pantavisor-service-system@1',
    'device.json': { groups: [{ name: 'first', status_goal: 'READY', restart_policy: 'container', timeout: 7, auto_recovery: { policy: 'always', max_retries: 2 } }] },
    ...c('one', { group: 'first' }),
  } as never);
  assert.deepEqual(custom.groups.map((g) => [g.name, g.statusGoal, g.timeout, g.autoRecovery.policy, g.autoRecovery.maxRetries]), [['first', 'READY', 7, 'always', 2]]);
  assert.throws(() => planRevision({ '#spec': 'pantavisor-service-system@1', 'device.json': { groups: [{ name: 'first' }] }, ...c('lost') } as never), /State JSON has bad format: lost\/run.json: container 'lost' has no group/);
  // run.json `volumes`: extra images by state key, a `dm:` handler noted but mounted plainly.
  const withVolumes = (volumes: string[], extra: Record<string, unknown> = {}, objects: string[] = []) =>
    planRevision({
      '#spec': 'pantavisor-service-system@1',
      ...c('v', { volumes, ...extra }),
      ...Object.fromEntries(['assets.squashfs', 'fw.squashfs', ...objects].map((f) => [`v/${f}`, obj])),
      'v/_dm/fw.squashfs.json': {},
    } as never);
  assert.deepEqual(withVolumes(['assets.squashfs', 'dm:fw.squashfs']).platforms[0].volumeKeys, ['v/assets.squashfs', 'v/fw.squashfs']);
  assert.throws(() => withVolumes(['missing.squashfs']), /State JSON has bad format: .*missing\.squashfs/);
  assert.throws(() => withVolumes(['root.squashfs']), /volume 'root.squashfs' is listed twice, or is also the root volume or a storage volume/);
  assert.throws(() => withVolumes(['assets.squashfs', 'assets.squashfs']), /listed twice/);
  assert.throws(() => withVolumes(['assets.squashfs'], { storage: { 'assets.squashfs': { persistence: 'boot' } } }), /also the root volume or a storage volume/);
  assert.throws(() => withVolumes(['crypt:assets.squashfs']), /unknown handler 'crypt' \(only dm: is known\)/);
  // Names are words of the mount scripts run as root: a shell expansion in one is refused, not run.
  for (const bad of ['x$(touch${IFS}pwned).squashfs', 'a"b', '.hidden', 'rootfs']) {
    assert.throws(() => withVolumes([bad], {}, [bad]), /cannot be used as a volume directory/, bad);
    assert.throws(() => withVolumes([], { storage: { [bad]: { persistence: 'boot' } } }), /cannot be used as a volume directory/, bad);
  }
});

test('bootCheck: every goal reached → ok; a container that cannot start → not ok with its console tail', { skip: needTool('mksquashfs') }, async (t) => {
  const { bootCheck, bootCheckJunit, formatBootCheck } = await import('../runtime/boot-check.ts');
  const dir = await tempDir(t);
  const good = await buildRevision(join(dir, 'good'), [{ name: 'app', init: 'trap "exit 0" TERM\necho up\nwhile :; do sleep 0.1; done\n' }]);
  const r = await bootCheck(good, { timeout: 20 });
  assert.equal(r.ok, true, formatBootCheck(r));
  assert.deepEqual(r.containers.map((c) => [c.name, c.group, c.status, c.reached]), [['app', 'root', 'STARTED', true]]);
  const bad = await buildRevision(join(dir, 'bad'), [
    { name: 'app', init: 'trap "exit 0" TERM\nwhile :; do sleep 0.1; done\n' },
    { name: 'broken', init: 'echo "cannot find /etc/broken.conf" >&2\nexit 1\n' },
  ]);
  const r2 = await bootCheck(bad, { timeout: 3 });
  assert.equal(r2.ok, false);
  const broken = r2.containers.find((c) => c.name === 'broken')!;
  assert.deepEqual([broken.status, broken.reached, broken.log_tail], ['STOPPED', false, ['cannot find /etc/broken.conf']]);
  assert.match(formatBootCheck(r2), /FAIL broken \(platform\): STOPPED, goal STARTED\n\s+\| cannot find \/etc\/broken.conf/);
  assert.match(bootCheckJunit(r2), /<testsuite name="pvmigrate boot" tests="2" failures="1"[^]*<testcase classname="boot.platform" name="broken"><failure message="STOPPED, goal STARTED">cannot find \/etc\/broken.conf<\/failure>/);
});

test('validate --boot --junit: one testcase per container, the failing one with its console tail, beside the validation suite', { skip: needTool('mksquashfs') }, async (t) => {
  const dir = await tempDir(t);
  const bad = await buildRevision(join(dir, 'bad'), [
    { name: 'app', init: 'trap "exit 0" TERM\nwhile :; do sleep 0.1; done\n' },
    { name: 'broken', init: 'echo "cannot find /etc/broken.conf" >&2\nexit 1\n' },
  ]);
  // The fixture has no BSP; the sample revision's makes it valid, so the boot check runs.
  const samples = join(repoRoot, 'samples/revision/a/bsp');
  await mkdir(join(bad, 'bsp'));
  for (const f of ['run.json', 'kernel.img', 'pantavisor']) await copyFile(join(samples, f), join(bad, 'bsp', f));
  await (await openRepo(bad)).commitTree();
  const junit = join(dir, 'junit.xml');
  const r = await runCli(['validate', bad, '--mode', 'disabled', '--boot', '--timeout', '3', '--junit', junit]);
  assert.equal(r.code, 1, r.stderr);
  const xml = await readFile(junit, 'utf8');
  assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites>\n<testsuite name="pvmigrate validate [^]*<\/testsuite>\n<testsuite name="pvmigrate boot" tests="2" failures="1"[^]*<\/testsuite>\n<\/testsuites>\n$/);
  assert.equal(xml.match(/<\?xml/g)!.length, 1);
  assert.match(xml, /<testcase classname="boot.root" name="app"><\/testcase>/);
  assert.match(xml, /<testcase classname="boot.platform" name="broken"><failure message="STOPPED, goal STARTED">cannot find \/etc\/broken.conf<\/failure><\/testcase>/);
});

test('LOCAL_RUN counts retries: at PV_REVISION_RETRIES the step is WONTGO; only locals/<name> can be installed', { skip: needTool('mksquashfs') }, async (t) => {
  const { Updater } = await import('../runtime/update.ts');
  const dir = await tempDir(t);
  const repo = await buildRevision(dir, one);
  const storageDir = join(dir, 'storage');
  await deployFrom(repo, storageDir);
  const storage = new Storage(storageDir);
  const calls: string[] = [];
  const updater = new Updater({
    storage,
    log: quiet,
    secureboot: 'disabled',
    maxRetries: 2,
    current: () => undefined,
    reboot: (reason) => void calls.push(`reboot ${reason}`),
    transition: async (rev) => void calls.push(`transition ${rev}`),
    gc: async () => 0,
  });
  const text = await readFile(join(repo, '.pvr/json'));
  assert.deepEqual(await updater.installStep('7', text), { status: 400, error: 'only locals/<name> revisions can be installed through the control socket' });
  assert.deepEqual(await updater.installStep('locals/x', text), { status: 200 });
  await storage.writeProgress('locals/x', { status: 'ERROR', 'status-msg': 'Status goal not reached', progress: 100, retries: 2 });
  assert.deepEqual(await updater.run('locals/x'), { status: 200 });
  assert.deepEqual(await storage.readProgress('locals/x'), { status: 'WONTGO', 'status-msg': 'Max update processing retries reached', progress: 100, retries: 3 });
  assert.deepEqual(calls, []);
  assert.deepEqual(await updater.run('locals/nope'), { status: 404, error: 'Step not found' });
});
