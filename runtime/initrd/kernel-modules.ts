/**
 * Kernel modules for the initrd, taken from a kernel's /lib/modules/<version> tree (e.g. a Debian
 * linux-image package unpacked with dpkg -x, which has no modules.dep: depmod runs at install time).
 * Dependencies come from each module's own `.modinfo` ELF section (`depends=`), the source depmod reads,
 * and modules.builtin says which names need no file. The result is in load order (dependencies first),
 * so /init can insmod them one by one.
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { InvalidInputError, EnvironmentError } from '../../src/errors.ts';

/** What the runtime needs from the kernel: a virtio disk, ext4 storage (crc32c for metadata_csum), loop + squashfs + overlayfs containers. */
export const RUNTIME_MODULES = ['virtio_pci', 'virtio_blk', 'crc32c_generic', 'ext4', 'loop', 'squashfs', 'overlay'];

/** Module names compare with '-' and '_' equal, as the kernel does. */
const norm = (name: string): string => name.replace(/-/g, '_');

/** `key=value` pairs of a module's .modinfo section (ELF64 little-endian, as on x86-64 and arm64). */
export function modinfo(ko: Buffer, file: string): Map<string, string[]> {
  const bad = (what: string) => new InvalidInputError('bad-module', `${file}: ${what}; is it an uncompressed kernel module (.ko)?`, { file });
  if (ko.length < 64 || ko.readUInt32BE(0) !== 0x7f454c46) throw bad('not an ELF file');
  if (ko[4] !== 2 || ko[5] !== 1) throw bad('not a 64-bit little-endian ELF file');
  const shoff = Number(ko.readBigUInt64LE(0x28));
  const shentsize = ko.readUInt16LE(0x3a);
  const shnum = ko.readUInt16LE(0x3c);
  const shstrndx = ko.readUInt16LE(0x3e);
  if (shentsize < 64 || shstrndx >= shnum || shoff + shnum * shentsize > ko.length) throw bad('section headers out of bounds');
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    const offset = Number(ko.readBigUInt64LE(at + 0x18));
    const size = Number(ko.readBigUInt64LE(at + 0x20));
    if (offset + size > ko.length) throw bad(`section ${i} out of bounds`);
    return { nameAt: ko.readUInt32LE(at), offset, size };
  };
  const names = section(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    const start = names.offset + s.nameAt;
    const end = ko.indexOf(0, start);
    if (end < 0 || end > names.offset + names.size || ko.toString('latin1', start, end) !== '.modinfo') continue;
    const info = new Map<string, string[]>();
    for (const pair of ko.toString('utf8', s.offset, s.offset + s.size).split('\0')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const key = pair.slice(0, eq);
      info.set(key, [...(info.get(key) ?? []), pair.slice(eq + 1)]);
    }
    return info;
  }
  throw bad('no .modinfo section');
}

function* walkKo(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walkKo(p);
    else if (e.name.endsWith('.ko') || /\.ko\.(xz|zst|gz)$/.test(e.name)) yield p;
  }
}

export interface ModuleFile {
  name: string;
  /** Absolute path on the host. */
  path: string;
  /** Path relative to the modules directory (kernel/fs/ext4/ext4.ko). */
  rel: string;
}

/** The named modules and everything they depend on, dependencies first; built-in ones are left out. */
export function resolveModules(modulesDir: string, wanted: string[]): ModuleFile[] {
  if (!existsSync(join(modulesDir, 'kernel'))) {
    throw new EnvironmentError('no-modules', `${modulesDir} has no kernel/ directory; pass the kernel's /lib/modules/<version> directory (e.g. from dpkg -x of its linux-image package)`, { file: modulesDir });
  }
  const files = new Map<string, string>();
  for (const p of walkKo(join(modulesDir, 'kernel'))) files.set(norm(p.slice(p.lastIndexOf('/') + 1).replace(/\.ko(\.\w+)?$/, '')), p);
  const builtinFile = join(modulesDir, 'modules.builtin');
  const builtin = new Set(
    existsSync(builtinFile)
      ? readFileSync(builtinFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => norm(l.slice(l.lastIndexOf('/') + 1).replace(/\.ko$/, '')))
      : [],
  );
  const order: ModuleFile[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (raw: string, chain: string[]) => {
    const name = norm(raw);
    if (state.get(name) === 'done' || builtin.has(name)) return;
    if (state.get(name) === 'visiting') throw new InvalidInputError('module-cycle', `kernel modules depend on each other in a cycle: ${[...chain, name].join(' → ')}`, { file: modulesDir });
    const path = files.get(name);
    if (!path) throw new EnvironmentError('missing-module', `kernel module '${name}' (needed by ${chain.join(' → ') || 'the runtime'}) is neither in ${modulesDir}/kernel nor built in`, { file: modulesDir });
    if (!path.endsWith('.ko')) throw new EnvironmentError('compressed-module', `${path} is compressed; busybox insmod needs plain .ko files: decompress the modules directory first`, { file: path });
    state.set(name, 'visiting');
    const deps = (modinfo(readFileSync(path), path).get('depends') ?? []).flatMap((d) => d.split(',')).filter(Boolean);
    for (const d of deps.sort()) visit(d, [...chain, name]);
    state.set(name, 'done');
    order.push({ name, path, rel: relative(modulesDir, path) });
  };
  for (const w of wanted) visit(w, []);
  return order;
}
