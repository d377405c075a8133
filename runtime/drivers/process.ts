/**
 * Process driver (no root, e.g. a laptop): lower fidelity by design. The root squashfs (and layers) are
 * unpacked once per object with our squashfs reader into storage/cache/squashfs/<sha>; the container root
 * is the lxc-overlay upper directory (disks/perm|rev/… or a per-boot directory), filled on each start with
 * the lower entries it does not already hold (copy-up emulation), then `_config/<c>/…` copied on top. The
 * init runs as a plain child in its own process group, with the root's bin directories first on PATH and
 * absolute paths on its command line resolved inside the root when they exist there. No namespaces, no mounts: the container sees the host's PID
 * space, hostname and filesystem; lxc.mount.entry lines are not applied (so neither are run.json `volumes`,
 * which only mount entries bring into the root); PV_CTRL and PV_ROOT tell the
 * container where its control socket and root are.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { chmod, cp, link, mkdir, rename, rm, symlink, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PvError } from '../../src/errors.ts';
import type { FileTree } from '../../src/fs/file-tree.ts';
import { FileSource } from '../../src/fs/source.ts';
import { openSquashfs } from '../../src/fs/squashfs/reader.ts';
import { exitOf, terminate } from '../child.ts';
import { safeJoin, type Storage } from '../storage.ts';
import type { ContainerContext, Driver, Mounted, RunningInit } from './types.ts';

/** Write a FileTree into `dir` (regular files, directories, symlinks, hard links; devices skipped: no root). */
async function unpackTree(tree: FileTree, dir: string): Promise<void> {
  const firstPath = new Map<number, string>();
  const dirModes: [string, number][] = [];
  for await (const e of tree.walk()) {
    const path = e.path === '/' ? dir : safeJoin(dir, e.path.slice(1));
    if (e.type === 'dir') {
      await mkdir(path, { recursive: true, mode: 0o700 });
      dirModes.push([path, e.mode & 0o7777]);
    } else if (e.type === 'symlink') await symlink(e.target ?? '', path);
    else if (e.type === 'file') {
      const prior = e.nlink > 1 ? firstPath.get(e.inode) : undefined;
      if (prior) await link(prior, path);
      else {
        await pipeline(tree.open(e), createWriteStream(path, { mode: 0o600 }));
        await chmod(path, e.mode & 0o7777);
        if (e.nlink > 1) firstPath.set(e.inode, path);
      }
    }
  }
  for (const [path, mode] of dirModes.reverse()) await chmod(path, mode | 0o200);
}

export class ProcessDriver implements Driver {
  readonly name = 'process' as const;
  private readonly setpriv = spawnSync('sh', ['-c', 'command -v setpriv']).status === 0;
  constructor(private readonly storage: Storage) {}

  /** The unpacked tree of one squashfs object, shared by every container and revision that uses it. */
  private async cacheOf(sha: string): Promise<string> {
    const dir = join(this.storage.root, 'cache', 'squashfs', sha);
    if (existsSync(dir)) return dir;
    const tmp = `${dir}.${process.pid}.tmp`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(dirname(dir), { recursive: true });
    const src = await FileSource.open(this.storage.objects.path(sha));
    const tree = await openSquashfs(src);
    try {
      await unpackTree(tree, tmp);
    } finally {
      await tree.close();
      await src.close();
    }
    await rename(tmp, dir);
    return dir;
  }

  async mount(ctx: ContainerContext): Promise<Mounted> {
    const { spec } = ctx;
    const overlay = spec.storage.find((s) => s.name === 'lxc-overlay')!;
    const root =
      overlay.persistence === 'permanent'
        ? join(ctx.storage.permDisk(spec.name), 'lxc-overlay', 'upper')
        : overlay.persistence === 'revision'
          ? join(ctx.storage.revDisk(ctx.rev, spec.name), 'lxc-overlay', 'upper')
          : join(ctx.volumesDir, 'lxc-overlay', 'upper');
    await mkdir(root, { recursive: true });
    // Top layer first: an entry already present (from a higher layer or an earlier boot) is kept.
    for (const key of [...spec.layerKeys].reverse().concat(spec.rootVolumeKey)) {
      const lower = await this.cacheOf(ctx.objectOf(key));
      await cp(lower, root, { recursive: true, force: false, errorOnExist: false, verbatimSymlinks: true });
    }
    const configDir = join(ctx.trailDir, '_config', spec.name);
    if (existsSync(configDir)) await cp(configDir, root, { recursive: true, force: true, dereference: true });
    await mkdir(join(root, 'pantavisor'), { recursive: true });
    await unlink(join(root, 'pantavisor', 'pv-ctrl')).catch(() => undefined);
    await symlink(ctx.ctrlSocket, join(root, 'pantavisor', 'pv-ctrl'));
    const boot = overlay.persistence === 'boot';
    return {
      root,
      async unmount() {
        if (boot) await rm(ctx.volumesDir, { recursive: true, force: true });
      },
    } as Mounted & { root: string };
  }

  async start(ctx: ContainerContext, mounted: Mounted): Promise<RunningInit> {
    const root = (mounted as Mounted & { root: string }).root;
    const cmd = ctx.lxc.initCmd.length ? [...ctx.lxc.initCmd] : ['/sbin/init'];
    // No chroot: absolute paths of the command line that exist in the container root are taken from it.
    for (let i = 0; i < cmd.length; i++) if (cmd[i].startsWith('/') && existsSync(join(root, cmd[i]))) cmd[i] = join(root, cmd[i]);
    const binDirs = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => join(root, d));
    // util-linux setpriv, when present, ties the init to the runtime's life (a crashed runtime leaves no container behind).
    const argv = this.setpriv ? ['setpriv', '--pdeathsig', 'SIGKILL', '--', ...cmd] : cmd;
    const child = spawn(argv[0], argv.slice(1), {
      cwd: join(root, ctx.lxc.initCwd ?? '/'),
      detached: true, // own process group: stop() reaches grandchildren too
      stdio: ['ignore', ctx.consoleFd, ctx.consoleFd],
      env: { ...ctx.lxc.environment, PATH: [...binDirs, process.env.PATH ?? ''].join(':'), PV_ROOT: root, PV_CTRL: ctx.ctrlSocket, container: 'pvmigrate-process' },
    });
    const exited = exitOf(child);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new PvError('start-failed', `container ${ctx.spec.name}: cannot run ${cmd[0]}: ${err.message}`)));
    });
    const pid = child.pid!;
    return { pid, exited, stop: (graceMs) => terminate(-pid, exited, graceMs) };
  }
}
