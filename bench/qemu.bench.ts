// Real-kernel figures: `pvmigrate initrd` build time and size, then one full update cycle on Debian's kernel
// under qemu (software emulation, no KVM): boot to the container STARTED, install + run the update from the
// disk's inbox until the kernel reboot, second boot through try and commit to poweroff; then a failed try
// rolled back through a third boot. The update cycle is shared with test/runtime-qemu.test.ts (which asserts
// on the disk afterwards); the rollback cycle runs here only (three TCG boots are too long for CI).
import { mkdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootQemu, debianKernel, type Kernel } from '../runtime/initrd/qemu.ts';
import { repoRoot } from '../test/helpers/cli.ts';
import { sh } from '../test/helpers/env.ts';
import { buildRevision, type ContainerDef } from '../test/runtime-fixture.ts';

const cli = (args: string[]) => sh(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), ...args]);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export interface CycleResult {
  disk: string;
  initrd: string;
  /** Serial console of each boot. */
  consoles: string[];
  /** Phase durations in ms. */
  phases: { initrd: number; prepare: number; bootToStarted: number; updateToReboot: number; tryToEnd: number; thirdBoot?: number };
}

const loop = 'trap "exit 0" TERM\nwhile :; do sleep 1; done\n';
const api = 'curl -s --unix-socket /pantavisor/pv-ctrl';
/** Shell lines: wait until locals/r1's progress shows `status`, echo it, then power the device off. */
const poweroffWhen = (status: string, tag: string) => [
  `while ! ${api} http://localhost/steps/locals/r1/progress | grep -q '"${status}"'; do sleep 0.5; done`,
  `echo "${tag} saw $(${api} http://localhost/steps/locals/r1/progress)"`,
  `${api} -X POST -d '{"op":"POWEROFF_DEVICE","payload":"update cycle done"}' http://localhost/commands`,
];

/** The initrd, factory revision 0 deployed on an ext4 disk, and an export of locals/r1 in the disk's inbox. */
async function prepare(dir: string, kernel: Kernel, r0: ContainerDef, r1: ContainerDef) {
  mkdirSync(dir, { recursive: true });
  const initrd = join(dir, 'initrd.gz');
  const t0 = Date.now();
  cli(['initrd', '-o', initrd, '--modules', kernel.modulesDir]);
  const t1 = Date.now();
  await buildRevision(join(dir, 'r0'), [r0]);
  await buildRevision(join(dir, 'r1'), [r1]);
  const storage = join(dir, 'storage');
  cli(['deploy', join(dir, 'r0/repo'), '--storage', storage]);
  mkdirSync(join(storage, 'inbox'));
  cli(['export', join(dir, 'r1/repo'), '-o', join(storage, 'inbox/r1.tgz')]);
  const disk = join(dir, 'disk.img');
  sh('mkfs.ext4', ['-q', '-d', storage, disk, '128M']);
  return { initrd, disk, initrdMs: t1 - t0, prepareMs: Date.now() - t1 };
}

/**
 * One boot: the console must show `lines` in order, then the machine must reboot or power off through the
 * kernel (ending qemu, which runs with -no-reboot). `mark` is called when `lines[markAt]` shows. Returns the console.
 */
async function bootOnce(kernel: Kernel, initrd: string, disk: string, lines: RegExp[], end: 'reboot' | 'poweroff', mark?: { at: number; fn: () => void }): Promise<string> {
  const append = ['PV_SECUREBOOT_MODE=disabled', 'PV_UPDATER_COMMIT_DELAY=1', 'PV_UPDATER_GOALS_TIMEOUT=90'];
  const b = bootQemu({ kernel: kernel.vmlinuz, initrd, disk, append, timeoutMs: 150_000 });
  try {
    for (const [i, re] of lines.entries()) {
      await b.waitFor(re);
      if (mark?.at === i) mark.fn();
    }
    await b.waitFor(end === 'reboot' ? /pv-init: reboot\n[^]*reboot: Restarting system/ : /pv-init: poweroff\n[^]*reboot: Power down/);
    const ended = await b.exited;
    if (ended.code !== 0 || ended.timedOut) throw new Error(`qemu ended with ${JSON.stringify(ended)}; console tail:\n${b.console().slice(-3000)}`);
    return b.console();
  } finally {
    b.kill();
  }
}

const up = (rev: string) => new RegExp(`pvmigrate run: revision ${rev.replace('/', '\\/')} up \\(ctrl /pv/pv-ctrl\\): hello=STARTED`);
const firstBoot = [/pv-init: storage \/dev\/vda mounted on \/storage/, up('0'), /pv-init: inbox: locals\/r1 is running/, /rebooting: update to locals\/r1/];

/**
 * Reboot update to DONE: factory revision 0 (container "hello", restart_policy system); locals/r1's container
 * waits for its own commit (DONE) and then powers the device off through the control socket. Throws, with
 * the console tail, when an expected console line does not come.
 */
export async function qemuUpdateCycle(dir: string, kernel: Kernel): Promise<CycleResult> {
  const r0: ContainerDef = { name: 'hello', restartPolicy: 'system', init: 'echo "hello-v1 from $(hostname) as pid $$"\n' + loop };
  const r1: ContainerDef = { name: 'hello', restartPolicy: 'system', curl: true, init: ['echo "hello-v2 from $(hostname) as pid $$"', ...poweroffWhen('DONE', 'hello-v2'), loop].join('\n') };
  const { initrd, disk, initrdMs, prepareMs } = await prepare(dir, kernel, r0, r1);
  const t0 = Date.now();
  let t1 = 0;
  const c1 = await bootOnce(kernel, initrd, disk, firstBoot, 'reboot', { at: 1, fn: () => (t1 = Date.now()) });
  const t2 = Date.now();
  const c2 = await bootOnce(kernel, initrd, disk, [/booting revision locals\/r1 \(trying\)/, up('locals/r1'), /revision locals\/r1 committed \(DONE\)/, /POWEROFF_DEVICE requested: update cycle done/], 'poweroff');
  return { disk, initrd, consoles: [c1, c2], phases: { initrd: initrdMs, prepare: prepareMs, bootToStarted: t1 - t0, updateToReboot: t2 - t1, tryToEnd: Date.now() - t2 } };
}

/**
 * Failed try rolled back through the kernel: locals/r1's system container exits at once, so the try ends
 * ERROR and reboots; the third boot returns to revision 0, whose container powers off once it sees the ERROR.
 */
export async function qemuRollbackCycle(dir: string, kernel: Kernel): Promise<CycleResult> {
  const r0: ContainerDef = { name: 'hello', restartPolicy: 'system', curl: true, init: ['echo "hello-v1 from $(hostname) as pid $$"', ...poweroffWhen('ERROR', 'hello-v1'), loop].join('\n') };
  const r1: ContainerDef = { name: 'hello', restartPolicy: 'system', init: 'echo "hello-v2 is broken" >&2\nexit 1\n' };
  const { initrd, disk, initrdMs, prepareMs } = await prepare(dir, kernel, r0, r1);
  const t0 = Date.now();
  let t1 = 0;
  const c1 = await bootOnce(kernel, initrd, disk, firstBoot, 'reboot', { at: 1, fn: () => (t1 = Date.now()) });
  const t2 = Date.now();
  const c2 = await bootOnce(kernel, initrd, disk, [/booting revision locals\/r1 \(trying\)/, /A container could not be started/], 'reboot');
  const t3 = Date.now();
  const c3 = await bootOnce(kernel, initrd, disk, [/booting revision 0 after an uncommitted try of locals\/r1/, up('0'), /POWEROFF_DEVICE requested: update cycle done/], 'poweroff');
  return { disk, initrd, consoles: [c1, c2, c3], phases: { initrd: initrdMs, prepare: prepareMs, bootToStarted: t1 - t0, updateToReboot: t2 - t1, tryToEnd: t3 - t2, thirdBoot: Date.now() - t3 } };
}

export async function bench(): Promise<void> {
  if (process.arch !== 'x64' || process.getuid?.() !== 0) {
    console.log('qemu: skipped (needs root on x86-64)');
    return;
  }
  const kernel = debianKernel();
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-bench-qemu-'));
  try {
    console.log(`kernel ${kernel.package}, qemu TCG (no KVM), 1 vCPU, 1024 MiB`);
    const r = await qemuUpdateCycle(join(dir, 'update'), kernel);
    const p = r.phases;
    console.log(`pvmigrate initrd: ${seconds(p.initrd)}, ${(statSync(r.initrd).size / 1048576).toFixed(1)} MiB`);
    console.log(`boot 1, qemu start → container STARTED: ${seconds(p.bootToStarted)}`);
    console.log(`update from the inbox → kernel reboot: ${seconds(p.updateToReboot)}`);
    console.log(`boot 2, try → commit (delay 1 s) → poweroff: ${seconds(p.tryToEnd)}`);
    console.log(`full update cycle (two boots): ${seconds(p.bootToStarted + p.updateToReboot + p.tryToEnd)}`);
    const f = (await qemuRollbackCycle(join(dir, 'rollback'), kernel)).phases;
    console.log(`failed try: boot 2 → ERROR → kernel reboot: ${seconds(f.tryToEnd)}; boot 3 back on revision 0 → poweroff: ${seconds(f.thirdBoot ?? 0)}`);
    console.log(`full rollback cycle (three boots): ${seconds(f.bootToStarted + f.updateToReboot + f.tryToEnd + (f.thirdBoot ?? 0))}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
