import type { Entry } from '../fs/file-tree.ts';
import type { PlanBsp } from './plan.ts';
import { parentOf, type TreeIndex } from './tree-index.ts';

const KERNEL_NAME = /^(?:vmlinuz(?:-.+)?|Image(?:\.gz)?|zImage|uImage|bzImage|kernel[0-9a-z_]*\.img)$/;
const FIT_NAME = /^(?:fitImage(?:-.+)?|.+\.itb|.+\.fit)$/;

function base(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The kernel release a kernel file name carries ("vmlinuz-6.1.0-18-arm64" → "6.1.0-18-arm64"). */
function releaseOf(name: string): string | undefined {
  const m = /^(?:vmlinuz|fitImage)-(.+)$/.exec(name);
  return m?.[1];
}

function regularFiles(index: TreeIndex, dir: RegExp, name: RegExp): Entry[] {
  return index.entries.filter((e) => e.type === 'file' && dir.test(parentOf(e.path)) && name.test(base(e.path)));
}

/**
 * The BSP parts of a root filesystem and, when the source has one, its vfat boot partition. Kernels are
 * recognised by their conventional names in /boot (or the boot partition's top level); with several, the one
 * whose release has a /lib/modules tree wins, else the last by name (the newest of versioned names).
 */
export function detectBsp(rootfs: TreeIndex, boot: TreeIndex | undefined, initrd: string | null): PlanBsp {
  // One modules.squashfs root: /lib/modules, or /usr/lib/modules on a merged-/usr image that has none there.
  const allModuleDirs = rootfs.entries.filter((e) => e.type === 'dir' && /^(?:\/usr)?\/lib\/modules\/[^/]+$/.test(e.path));
  const inLib = allModuleDirs.filter((e) => e.path.startsWith('/lib/'));
  const moduleDirs = inLib.length > 0 ? inLib : allModuleDirs;
  const releases = new Set(moduleDirs.map((e) => base(e.path)));

  const candidates: { path: string; entry: Entry }[] = [];
  const fits: string[] = [];
  for (const e of regularFiles(rootfs, /^\/boot$/, KERNEL_NAME)) candidates.push({ path: e.path, entry: e });
  for (const e of regularFiles(rootfs, /^\/boot$/, FIT_NAME)) fits.push(e.path);
  if (boot) {
    for (const e of regularFiles(boot, /^\/$/, KERNEL_NAME)) candidates.push({ path: `boot:${e.path}`, entry: e });
    for (const e of regularFiles(boot, /^\/$/, FIT_NAME)) fits.push(`boot:${e.path}`);
  }
  const matching = candidates.filter((c) => releases.has(releaseOf(base(c.path)) ?? ''));
  const pool = matching.length > 0 ? matching : candidates;
  const kernel = pool.length > 0 ? pool.map((c) => c.path).sort().at(-1)! : null;

  const dtbs = [
    ...regularFiles(rootfs, /^\/boot(?:\/.*)?$/, /\.dtb$/).map((e) => e.path),
    ...(boot ? regularFiles(boot, /^\/.*$/, /\.dtb$/).map((e) => `boot:${e.path}`) : []),
  ];
  // bsp/<basename> must be unique: the first of each name (sorted paths) wins, the rest stay in place.
  const seen = new Set<string>();
  const uniqueDtbs = dtbs.sort().filter((p) => !seen.has(base(p)) && seen.add(base(p)));

  const firmware = rootfs.entries.find((e) => e.type === 'dir' && /^(?:\/usr)?\/lib\/firmware$/.test(e.path) && rootfs.children(e.path).length > 0);

  return {
    kernel: kernel ?? null,
    fit: kernel === null && fits.length > 0 ? fits.sort()[0]! : null,
    dtbs: uniqueDtbs,
    modules: moduleDirs.map((e) => e.path).sort(),
    firmware: firmware?.path ?? null,
    initrd,
  };
}
