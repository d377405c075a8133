/**
 * Boot harness for the initrd on a real kernel: Debian's kernel package fetched with `apt-get download` and
 * unpacked with `dpkg -x` into a cache directory (the host's /boot and /lib/modules are never touched, and
 * no initramfs-tools hooks run), then qemu-system-x86_64 in software emulation (no KVM assumed) with the
 * serial console on a pipe. Used by test/runtime-qemu.test.ts and bench/qemu.bench.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvironmentError } from '../../src/errors.ts';

export interface Kernel {
  package: string;
  vmlinuz: string;
  /** /lib/modules/<version> of the same package. */
  modulesDir: string;
}

function run(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.error || r.status !== 0) throw new EnvironmentError('kernel-fetch', `${cmd} ${args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
  return r.stdout;
}

/** The kernel image package linux-image-amd64 depends on right now (e.g. linux-image-6.1.0-56-amd64). */
export function debianKernelPackage(meta = 'linux-image-amd64'): string {
  const depends = () => /Depends: (linux-image-\S+)/.exec(spawnSync('apt-cache', ['depends', meta], { encoding: 'utf8' }).stdout ?? '')?.[1];
  // A CI image may come without package lists (they are fetched only when a package is missing).
  let dep = depends();
  if (!dep) {
    run('apt-get', ['update', '-qq']);
    dep = depends();
  }
  if (!dep) throw new EnvironmentError('kernel-fetch', `apt-cache depends ${meta} names no kernel image package; run apt-get update`);
  return dep;
}

/** Debian's kernel, unpacked once into `cacheDir/<package>` (atomically: a half-unpacked tree is never used). */
export function debianKernel(cacheDir = join(tmpdir(), 'pvmigrate-debian-kernel')): Kernel {
  const pkg = debianKernelPackage();
  const root = join(cacheDir, pkg);
  if (!existsSync(root)) {
    const work = join(cacheDir, `.${pkg}.${process.pid}`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    try {
      run('apt-get', ['download', '-q', pkg], work);
      const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
      if (!deb) throw new EnvironmentError('kernel-fetch', `apt-get download ${pkg} left no .deb`);
      run('dpkg', ['-x', join(work, deb), join(work, 'root')]);
      try {
        renameSync(join(work, 'root'), root);
      } catch (err) {
        // Another run unpacked the same package meanwhile: use theirs.
        if (!existsSync(root)) throw err;
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  const boot = readdirSync(join(root, 'boot')).find((f) => f.startsWith('vmlinuz-'));
  const version = readdirSync(join(root, 'lib/modules'))[0];
  if (!boot || !version) throw new EnvironmentError('kernel-fetch', `${root} holds no vmlinuz or no lib/modules/<version>; remove it to fetch again`);
  return { package: pkg, vmlinuz: join(root, 'boot', boot), modulesDir: join(root, 'lib/modules', version) };
}

export interface QemuOptions {
  kernel: string;
  initrd: string;
  /** Raw disk image attached as virtio (the guest's /dev/vda). */
  disk: string;
  /** Extra kernel command line words (e.g. PV_UPDATER_COMMIT_DELAY=1). */
  append?: string[];
  memoryMiB?: number;
  /** qemu is killed after this long. */
  timeoutMs: number;
}

export interface QemuRun {
  /** Serial console text so far (\r removed). */
  console(): string;
  /** Resolves with the match once the console shows `re`; rejects with the console tail on exit or timeout. */
  waitFor(re: RegExp): Promise<RegExpMatchArray>;
  /** qemu's exit: with -no-reboot a guest reboot or poweroff ends it. */
  exited: Promise<{ code: number | null; timedOut: boolean }>;
  kill(): void;
}

export function bootQemu(o: QemuOptions): QemuRun {
  // no_timer_check: under software emulation on a loaded host the kernel's IO-APIC timer probe can time out
  // and panic ("IO-APIC + timer doesn't work"); the check proves nothing about the guest we boot.
  const append = ['console=ttyS0', 'panic=-1', 'quiet', 'no_timer_check', ...(o.append ?? [])].join(' ');
  const args = ['-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio', '-display', 'none', '-m', String(o.memoryMiB ?? 1024), '-cpu', 'max', '-smp', '1'];
  args.push('-kernel', o.kernel, '-initrd', o.initrd, '-append', append, '-drive', `file=${o.disk},format=raw,if=virtio`);
  const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const waiters = new Set<() => void>();
  const onData = (d: string) => {
    // The serial line ends lines with \r\n.
    text += d.replace(/\r/g, '');
    for (const w of waiters) w();
  };
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);
  let timedOut = false;
  let ended = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, o.timeoutMs);
  const exited = new Promise<{ code: number | null; timedOut: boolean }>((resolve) => {
    child.on('error', (err) => {
      text += `\n[qemu could not start: ${err.message}]\n`;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      ended = true;
      resolve({ code, timedOut });
      for (const w of waiters) w();
    });
  });
  const tail = () => text.split('\n').slice(-40).join('\n');
  return {
    console: () => text,
    exited,
    kill: () => child.kill('SIGKILL'),
    waitFor(re: RegExp) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(text);
          if (m) {
            waiters.delete(check);
            resolve(m);
          } else if (ended) {
            waiters.delete(check);
            reject(new Error(`qemu ended${timedOut ? ` after its ${o.timeoutMs} ms limit` : ''} before the console showed ${re}; console tail:\n${tail()}`));
          }
        };
        waiters.add(check);
        check();
      });
    },
  };
}
