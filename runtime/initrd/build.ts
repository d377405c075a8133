/**
 * `pvmigrate initrd`: the runtime packaged as a Linux initramfs (cpio newc, gzip) that boots a storage disk.
 *
 * Contents (paths inside the initrd):
 *   /init                               runtime/initrd/init.sh (PID 1: modules, switch_root, storage, runtime)
 *   /usr/bin/node + its libraries       the node binary (default: the one running this command)
 *   /usr/lib/pvmigrate/runtime.mjs      the runtime's `run`/`pvcontrol` commands as one esbuild bundle
 *   /bin/busybox + /bin/<applet> links  static busybox: insmod, switch_root, reboot, mv…
 *   /bin/sh + libraries                 dash, the shell of /init and of the namespace driver's scripts
 *   /usr/sbin/<tool> + libraries        util-linux tools the namespace driver runs (mount, unshare, nsenter…)
 *   /lib/modules/<ver>/…, pv-load-order kernel modules in load order, when a modules directory is given
 * Deterministic: sorted members, mtime 0, uid/gid 0, gzip without a timestamp.
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';
import { EnvironmentError } from '../../src/errors.ts';
import { writeStreamAtomically } from '../../src/fs/atomic.ts';
import { cpioNewc, type InitrdMember } from './cpio-writer.ts';
import { elfMachine, hostCommand, sharedLibraries, type Placed } from './host-binaries.ts';
import { resolveModules, RUNTIME_MODULES } from './kernel-modules.ts';

const here = fileURLToPath(new URL('./', import.meta.url));

/** util-linux programs the runtime and the namespace driver spawn (runtime/drivers/namespace.ts, pid1.ts). */
const UTIL_LINUX = ['mount', 'umount', 'losetup', 'unshare', 'nsenter', 'setpriv', 'pivot_root'];

/** Busybox applets /init and the namespace driver's scripts use (util-linux names excluded: those win). */
const APPLETS = ['ash', 'basename', 'cat', 'chmod', 'cp', 'cut', 'date', 'dirname', 'dmesg', 'echo', 'env', 'false', 'grep', 'head', 'hostname', 'insmod', 'kill', 'ln', 'ls', 'mkdir', 'mknod', 'mountpoint', 'mv', 'poweroff', 'printf', 'ps', 'readlink', 'reboot', 'rm', 'sed', 'seq', 'sleep', 'switch_root', 'sync', 'test', 'touch', 'tr', 'true', 'uname', 'wc', '['];

export interface InitrdOptions {
  output: string;
  /** node binary to include; default process.execPath. */
  node?: string;
  /** static busybox; default the one on PATH. */
  busybox?: string;
  /** A kernel's /lib/modules/<version> directory: the runtime's modules (and their dependencies) are included. */
  modulesDir?: string;
  /** Extra module names beyond RUNTIME_MODULES. */
  extraModules?: string[];
}

export interface InitrdResult {
  output: string;
  size: number;
  sha256: string;
  machine: string;
  members: number;
  modules: string[];
}

/** The runtime's commands as one ESM file (esbuild, in memory). */
export async function bundleRuntime(): Promise<Buffer> {
  const { build } = await import('esbuild');
  const r = await build({
    entryPoints: [join(here, 'runtime-main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    outfile: 'runtime.mjs',
    legalComments: 'none',
    logLevel: 'silent',
  });
  return Buffer.from(r.outputFiles[0].contents);
}

function placeProgram(members: Map<string, InitrdMember>, path: string, from: string): void {
  members.set(path, { type: 'file', path, mode: 0o755, from });
  for (const lib of sharedLibraries(from)) members.set(lib.path, { type: 'file', path: lib.path, mode: 0o755, from: lib.from });
}

/** Every parent directory of every member, as 0755 directories. */
function withParents(members: Map<string, InitrdMember>): InitrdMember[] {
  const all = new Map(members);
  for (const path of members.keys()) {
    const parts = path.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!all.has(dir) && !all.has('/' + dir)) all.set(dir, { type: 'dir', path: dir, mode: 0o755 });
    }
  }
  return [...all.values()];
}

export async function buildInitrd(o: InitrdOptions): Promise<InitrdResult> {
  const node = o.node ?? process.execPath;
  const busybox = o.busybox ?? hostCommand('busybox', 'busybox-static');
  const machine = elfMachine(node);
  const tools: Placed[] = UTIL_LINUX.map((t) => ({ path: `/usr/sbin/${t}`, from: hostCommand(t, t === 'mount' || t === 'umount' ? 'mount' : 'util-linux') }));
  for (const [what, file] of [['busybox', busybox], ...tools.map((t) => [basename(t.path), t.from])] as const) {
    const m = elfMachine(file);
    if (m !== machine) throw new EnvironmentError('arch-mismatch', `${what} (${file}) is ${m} but node (${node}) is ${machine}; an initrd holds one architecture: pass --node for this host's architecture`, { file });
  }
  if (sharedLibraries(busybox).length) throw new EnvironmentError('busybox-dynamic', `${busybox} is dynamically linked; the initrd needs a static busybox (apt-get install busybox-static, or --busybox PATH)`, { file: busybox });

  const members = new Map<string, InitrdMember>();
  const dir = (path: string, mode = 0o755) => members.set(path, { type: 'dir', path, mode });
  for (const d of ['proc', 'sys', 'dev', 'run', 'storage', 'pv', 'newroot']) dir(d);
  dir('tmp', 0o1777);
  // The kernel opens /dev/console for init's stdio before anything can mount devtmpfs.
  members.set('dev/console', { type: 'char', path: 'dev/console', mode: 0o600, major: 5, minor: 1 });
  members.set('dev/null', { type: 'char', path: 'dev/null', mode: 0o666, major: 1, minor: 3 });
  members.set('init', { type: 'data', path: 'init', mode: 0o755, data: readFileSync(join(here, 'init.sh')) });
  members.set('usr/lib/pvmigrate/runtime.mjs', { type: 'data', path: 'usr/lib/pvmigrate/runtime.mjs', mode: 0o644, data: await bundleRuntime() });
  placeProgram(members, '/usr/bin/node', node);
  members.set('bin/busybox', { type: 'file', path: 'bin/busybox', mode: 0o755, from: busybox });
  for (const a of APPLETS) members.set(`bin/${a}`, { type: 'symlink', path: `bin/${a}`, target: 'busybox' });
  // /bin/sh is dash, as on a Debian host: Debian's busybox ash prefers its applets, so `command -v busybox`
  // there prints a bare "busybox", which the namespace driver cannot resolve to a file.
  placeProgram(members, '/bin/sh', hostCommand('dash', 'dash'));
  for (const t of tools) placeProgram(members, t.path, t.from);

  const modules = o.modulesDir ? resolveModules(o.modulesDir, [...RUNTIME_MODULES, ...(o.extraModules ?? [])]) : [];
  if (o.modulesDir) {
    const version = basename(o.modulesDir.replace(/\/+$/, ''));
    for (const m of modules) {
      const mm = elfMachine(m.path);
      if (mm !== machine) throw new EnvironmentError('arch-mismatch', `kernel module ${m.path} is ${mm} but node is ${machine}`, { file: m.path });
      members.set(`lib/modules/${version}/${m.rel}`, { type: 'file', path: `lib/modules/${version}/${m.rel}`, mode: 0o644, from: m.path });
    }
    const order = modules.map((m) => `${version}/${m.rel}\n`).join('');
    members.set('lib/modules/pv-load-order', { type: 'data', path: 'lib/modules/pv-load-order', mode: 0o644, data: Buffer.from(order) });
  } else {
    // Every driver built in (a custom kernel): /init still reads the list.
    members.set('lib/modules/pv-load-order', { type: 'data', path: 'lib/modules/pv-load-order', mode: 0o644, data: Buffer.alloc(0) });
  }

  const list = withParents(new Map([...members].map(([k, v]) => [k.replace(/^\/+/, ''), { ...v, path: v.path.replace(/^\/+/, '') }])));
  const archive = Readable.from(cpioNewc(list));
  const gzip = createGzip({ level: 6 });
  archive.on('error', (err) => gzip.destroy(err)).pipe(gzip);
  const written = await writeStreamAtomically(o.output, gzip);
  return { output: o.output, size: written.size, sha256: written.sha256, machine, members: list.length, modules: modules.map((m) => m.name) };
}
