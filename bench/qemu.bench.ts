// Real-kernel figures: `pvmigrate initrd` build time and size, then one full update cycle on Debian's kernel
// under qemu (software emulation, no KVM): boot to the container STARTED, install + run the update from the
// disk's inbox until the kernel reboot, second boot through try and commit to poweroff. The cycle itself is
// shared with test/runtime-qemu.test.ts (which asserts on the disk afterwards).
import { mkdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootQemu, debianKernel, type Kernel } from '../runtime/initrd/qemu.ts';
import { repoRoot } from '../test/helpers/cli.ts';
import { sh } from '../test/helpers/env.ts';
import { buildRevision } from '../test/runtime-fixture.ts';

const cli = (args: string[]) => sh(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), ...args]);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export interface CycleResult {
  disk: string;
  initrd: string;
  /** Serial console of each boot. */
  consoles: [string, string];
  /** Phase durations in ms. */
  phases: { initrd: number; prepare: number; bootToStarted: number; updateToReboot: number; tryCommitPoweroff: number };
}

/**
 * Factory revision 0 (container "hello", restart_policy system) deployed on an ext4 disk, with an export of
 * locals/r1 in the disk's inbox; r1's container waits for its own commit (DONE) and then powers the device off
 * through the control socket. Throws, with the console tail, when any expected console line does not come.
 */
export async function qemuUpdateCycle(dir: string, kernel: Kernel): Promise<CycleResult> {
  const t0 = Date.now();
  const initrd = join(dir, 'initrd.gz');
  cli(['initrd', '-o', initrd, '--modules', kernel.modulesDir]);
  const t1 = Date.now();
  const loop = 'trap "exit 0" TERM\nwhile :; do sleep 1; done\n';
  await buildRevision(join(dir, 'r0'), [{ name: 'hello', restartPolicy: 'system', init: 'echo "hello-v1 from $(hostname) as pid $$"\n' + loop }]);
  const api = 'curl -s --unix-socket /pantavisor/pv-ctrl';
  const v2 = [
    'echo "hello-v2 from $(hostname) as pid $$"',
    `while ! ${api} http://localhost/steps/locals/r1/progress | grep -q '"DONE"'; do sleep 0.5; done`,
    `echo "hello-v2 saw $(${api} http://localhost/steps/locals/r1/progress)"`,
    `${api} -X POST -d '{"op":"POWEROFF_DEVICE","payload":"update cycle done"}' http://localhost/commands`,
    loop,
  ].join('\n');
  await buildRevision(join(dir, 'r1'), [{ name: 'hello', restartPolicy: 'system', curl: true, init: v2 }]);
  const storage = join(dir, 'storage');
  cli(['deploy', join(dir, 'r0/repo'), '--storage', storage]);
  mkdirSync(join(storage, 'inbox'));
  cli(['export', join(dir, 'r1/repo'), '-o', join(storage, 'inbox/r1.tgz')]);
  const disk = join(dir, 'disk.img');
  sh('mkfs.ext4', ['-q', '-d', storage, disk, '128M']);
  const t2 = Date.now();

  const append = ['PV_SECUREBOOT_MODE=disabled', 'PV_UPDATER_COMMIT_DELAY=1', 'PV_UPDATER_GOALS_TIMEOUT=90'];
  const boot = () => bootQemu({ kernel: kernel.vmlinuz, initrd, disk, append, timeoutMs: 150_000 });
  const b1 = boot();
  let t3 = 0;
  try {
    await b1.waitFor(/pv-init: storage \/dev\/vda mounted on \/storage/);
    await b1.waitFor(/pvmigrate run: revision 0 up \(ctrl \/pv\/pv-ctrl\): hello=STARTED/);
    t3 = Date.now();
    await b1.waitFor(/pv-init: inbox: locals\/r1 is running/);
    await b1.waitFor(/rebooting: update to locals\/r1/);
    await b1.waitFor(/pv-init: reboot\n[^]*reboot: Restarting system/);
    const end = await b1.exited;
    if (end.code !== 0 || end.timedOut) throw new Error(`first boot: qemu ended with ${JSON.stringify(end)}`);
  } finally {
    b1.kill();
  }
  const t4 = Date.now();
  const b2 = boot();
  try {
    await b2.waitFor(/booting revision locals\/r1 \(trying\)/);
    await b2.waitFor(/revision locals\/r1 up \(ctrl \/pv\/pv-ctrl\): hello=STARTED/);
    await b2.waitFor(/revision locals\/r1 committed \(DONE\)/);
    await b2.waitFor(/POWEROFF_DEVICE requested: update cycle done/);
    await b2.waitFor(/pv-init: poweroff\n[^]*reboot: Power down/);
    const end = await b2.exited;
    if (end.code !== 0 || end.timedOut) throw new Error(`second boot: qemu ended with ${JSON.stringify(end)}`);
  } finally {
    b2.kill();
  }
  const t5 = Date.now();
  return {
    disk,
    initrd,
    consoles: [b1.console(), b2.console()],
    phases: { initrd: t1 - t0, prepare: t2 - t1, bootToStarted: t3 - t2, updateToReboot: t4 - t3, tryCommitPoweroff: t5 - t4 },
  };
}

export async function bench(): Promise<void> {
  if (process.arch !== 'x64' || process.getuid?.() !== 0) {
    console.log('qemu: skipped (needs root on x86-64)');
    return;
  }
  const kernel = debianKernel();
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-bench-qemu-'));
  try {
    const r = await qemuUpdateCycle(dir, kernel);
    const p = r.phases;
    console.log(`kernel ${kernel.package}, qemu TCG (no KVM), 1 vCPU, 1024 MiB`);
    console.log(`pvmigrate initrd: ${seconds(p.initrd)}, ${(statSync(r.initrd).size / 1048576).toFixed(1)} MiB`);
    console.log(`boot 1, qemu start → container STARTED: ${seconds(p.bootToStarted)}`);
    console.log(`update from the inbox → kernel reboot: ${seconds(p.updateToReboot)}`);
    console.log(`boot 2, try → commit (delay 1 s) → poweroff: ${seconds(p.tryCommitPoweroff)}`);
    console.log(`full cycle (two boots): ${seconds(p.bootToStarted + p.updateToReboot + p.tryCommitPoweroff)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
