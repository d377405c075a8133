/**
 * Namespace driver (root on Linux): the container's volumes are mounted by a "holder" process in a private
 * mount namespace (so nothing leaks into the host's mount table and everything is released when the
 * holder exits), then the init runs in fresh mount, pid, uts and ipc namespaces entered from the holder's
 * mounts, after pivot_root into the overlay root. Only util-linux (mount, unshare, nsenter, pivot_root,
 * setpriv, hostname) and a static busybox (to detach the old root after the pivot) are used.
 *
 * Layout inside the holder's namespace, for container <c> (Pantavisor's /volumes/<c>):
 *   <vol>/root.squashfs        squashfs, loop-mounted read-only (root.ovl.squashfs layered above it)
 *   <vol>/<run.json volume>    each extra squashfs of run.json `volumes`, loop-mounted read-only
 *   <vol>/<storage volume>     bind of disks/perm/<c>/<v> or disks/rev/<rev>/<c>/<v>, or a tmpfs (boot)
 *   <vol>/.skel                mount points the runtime needs (/proc, /sys, /dev, /pantavisor, old root)
 *   <vol>/rootfs               overlay: lower = .skel : _config/<c> : layers : root.squashfs; upper/work in lxc-overlay
 */
import { spawn, spawnSync } from 'node:child_process';
import type { Readable } from 'node:stream';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { EnvironmentError, PvError } from '../../src/errors.ts';
import { exitOf, terminate, waitForLine } from '../child.ts';
import type { ContainerContext, Driver, Mounted, RunningInit } from './types.ts';

/** POSIX single-quoting. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function staticBusybox(): string {
  const r = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' });
  const path = r.stdout.trim();
  if (r.status !== 0 || !path) throw new EnvironmentError('missing-tool', 'the namespace driver needs a static busybox on PATH (apt-get install busybox-static)');
  return realpathSync(path);
}

function hostDir(ctx: ContainerContext, volume: string, persistence: 'permanent' | 'revision'): string {
  return join(persistence === 'permanent' ? ctx.storage.permDisk(ctx.spec.name) : ctx.storage.revDisk(ctx.rev, ctx.spec.name), volume);
}

/** Overlay option strings cannot carry ':' or ','. */
function checkOverlayPath(p: string): string {
  if (/[:,]/.test(p)) throw new EnvironmentError('bad-path', `path '${p}' contains ':' or ',' which overlayfs options cannot express; move the storage`);
  return p;
}

function mountScript(ctx: ContainerContext): string {
  const V = ctx.volumesDir;
  const lines = ['set -e', `V=${shq(V)}`, 'mount -t tmpfs -o mode=0755 pv-volumes "$V"'];
  // Names come from the state: always quoted (platforms.ts also limits them to a safe alphabet).
  const at = (name: string): string => shq(join(V, name));
  const mountImage = (key: string): string => {
    const name = key.slice(ctx.spec.name.length + 1);
    lines.push(`mkdir -p ${at(name)}`, `mount -t squashfs -o ro,loop ${shq(join(ctx.trailDir, key))} ${at(name)}`);
    return join(V, name);
  };
  const lower = [...ctx.spec.layerKeys].reverse().concat(ctx.spec.rootVolumeKey).map(mountImage);
  ctx.spec.volumeKeys.forEach(mountImage);
  for (const vol of ctx.spec.storage) {
    lines.push(`mkdir -p ${at(vol.name)}`);
    if (vol.persistence === 'boot') lines.push(`mount -t tmpfs -o mode=0755 pv-boot ${at(vol.name)}`);
    else {
      const src = hostDir(ctx, vol.name, vol.persistence);
      lines.push(`mkdir -p ${shq(src)}`, `mount --bind ${shq(src)} ${at(vol.name)}`);
    }
  }
  lines.push('mkdir -p "$V/lxc-overlay/upper" "$V/lxc-overlay/work" "$V/rootfs"');
  lines.push('mkdir -p "$V/.skel/proc" "$V/.skel/sys" "$V/.skel/dev" "$V/.skel/pantavisor" "$V/.skel/.pv-oldroot"');
  const configDir = join(ctx.trailDir, '_config', ctx.spec.name);
  const layers = [`${V}/.skel`, ...(existsSync(configDir) ? [configDir] : []), ...lower].map(checkOverlayPath);
  lines.push(`mount -t overlay -o ${shq(`lowerdir=${layers.join(':')},upperdir=${checkOverlayPath(V)}/lxc-overlay/upper,workdir=${V}/lxc-overlay/work`)} pv-root "$V/rootfs"`);
  lines.push('echo mounted', 'read _ || true');
  return lines.join('\n');
}

/** Map an lxc.mount.entry source: /volumes/<c>/x → this container's volumes dir; /storage → storage. */
function entrySource(ctx: ContainerContext, source: string): string {
  const prefix = `/volumes/${ctx.spec.name}/`;
  if (source.startsWith(prefix)) return join(ctx.volumesDir, source.slice(prefix.length));
  if (source === '/storage' || source.startsWith('/storage/')) return join(ctx.storage.root, source.slice('/storage'.length));
  return source;
}

function startScript(ctx: ContainerContext, busybox: string): string {
  const { lxc } = ctx;
  const lines = ['set -e', `R=${shq(join(ctx.volumesDir, 'rootfs'))}`];
  lines.push('mount -t proc proc "$R/proc"');
  const sys = lxc.mountAuto.find((w) => w.startsWith('sys'));
  if (sys) lines.push(`mount -t sysfs -o ${sys.includes(':rw') ? 'rw' : 'ro'},nosuid,nodev,noexec sysfs "$R/sys"`);
  // A minimal /dev, as LXC's autodev does.
  lines.push('mount -t tmpfs -o mode=0755,nosuid pv-dev "$R/dev"', 'mkdir -p "$R/dev/pts" "$R/dev/shm"');
  lines.push('for n in null zero full random urandom tty; do touch "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"; done');
  for (const e of lxc.mountEntries) {
    const optional = e.options.includes('optional');
    const create = e.options.find((o) => o.startsWith('create='))?.slice('create='.length);
    const opts = e.options.filter((o) => !o.startsWith('create=') && o !== 'optional');
    const tgt = `"$R/"${shq(e.target)}`;
    const src = shq(entrySource(ctx, e.source));
    const cmds: string[] = [];
    if (create === 'dir') cmds.push(`mkdir -p ${tgt}`);
    if (create === 'file') cmds.push(`mkdir -p "$(dirname ${tgt})"`, `[ -e ${tgt} ] || touch ${tgt}`);
    if (opts.includes('bind') || opts.includes('rbind')) {
      cmds.push(`mount ${opts.includes('rbind') ? '--rbind' : '--bind'} ${src} ${tgt}`);
      if (opts.includes('ro')) cmds.push(`mount -o remount,bind,ro ${tgt}`);
    } else {
      cmds.push(`mount -t ${shq(e.fstype)} ${opts.length ? `-o ${shq(opts.join(','))}` : ''} ${src} ${tgt}`);
    }
    lines.push(optional ? `{ ${cmds.join(' && ')}; } || echo "pv: optional mount ${e.target} skipped" >&2` : cmds.join('\n'));
  }
  lines.push('mount -t tmpfs -o mode=0755 pv-ctrl "$R/pantavisor"', 'touch "$R/pantavisor/pv-ctrl"', `mount --bind ${shq(ctx.ctrlSocket)} "$R/pantavisor/pv-ctrl"`);
  if (!lxc.namespaceKeep.includes('uts')) lines.push(`hostname ${shq(lxc.utsName ?? ctx.spec.name)}`);
  lines.push('cd "$R"', 'pivot_root . .pv-oldroot', `${shq('/.pv-oldroot' + busybox)} umount -l /.pv-oldroot`);
  lines.push(`cd ${shq(lxc.initCwd ?? '/')}`, 'echo started >&3', 'exec 3>&-', 'exec "$@"');
  return lines.join('\n');
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export class NamespaceDriver implements Driver {
  readonly name = 'namespace' as const;
  private readonly busybox = staticBusybox();

  async mount(ctx: ContainerContext): Promise<Mounted> {
    await mkdir(ctx.volumesDir, { recursive: true });
    const holder = spawn('setpriv', ['--pdeathsig', 'SIGKILL', 'unshare', '--mount', '--propagation', 'private', '--', '/bin/sh', '-c', mountScript(ctx)], {
      stdio: ['pipe', 'pipe', ctx.consoleFd],
      detached: true, // own session: a terminal's Ctrl-C reaches the runtime only, which stops containers in order
    });
    const exited = exitOf(holder);
    try {
      await waitForLine(holder.stdout!, 'mounted', `mounting ${ctx.spec.name}`);
    } catch (err) {
      const ex = await exited;
      throw new PvError('mount-failed', `container ${ctx.spec.name}: volumes could not be mounted (exit ${ex.code ?? ex.signal}); see ${ctx.storage.logsDir(ctx.rev, ctx.spec.name)}/console.log`, { cause: err });
    }
    holder.stdout!.resume();
    const pid = holder.pid!;
    const volumesDir = ctx.volumesDir;
    const mounted: Mounted & { holderPid: number } = {
      holderPid: pid,
      async unmount() {
        holder.stdin!.end();
        await terminate(pid, exited, 2000).catch(() => undefined);
        await rmdir(volumesDir).catch(() => undefined);
      },
    };
    return mounted;
  }

  async start(ctx: ContainerContext, mounted: Mounted): Promise<RunningInit> {
    const holderPid = (mounted as Mounted & { holderPid: number }).holderPid;
    const keep = ctx.lxc.namespaceKeep;
    const ns = ['--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child'];
    if (!keep.includes('uts')) ns.push('--uts');
    if (!keep.includes('ipc')) ns.push('--ipc');
    const capDrop = ctx.lxc.capDrop.length ? ['setpriv', '--bounding-set', ctx.lxc.capDrop.map((c) => `-${c.toLowerCase().replace(/^cap_/, '')}`).join(','), '--'] : [];
    const init = ctx.lxc.initCmd.length ? ctx.lxc.initCmd : ['/sbin/init'];
    const args = ['--pdeathsig', 'SIGKILL', 'nsenter', `--target=${holderPid}`, '--mount', '--', 'unshare', ...ns, '--', ...capDrop, '/bin/sh', '-c', startScript(ctx, this.busybox), 'pv-start', ...init];
    const child = spawn('setpriv', args, {
      stdio: ['ignore', ctx.consoleFd, ctx.consoleFd, 'pipe'],
      detached: true,
      env: { PATH: DEFAULT_PATH, TERM: 'linux', container: 'lxc', ...ctx.lxc.environment },
    });
    const exited = exitOf(child);
    try {
      await waitForLine(child.stdio[3] as Readable, 'started', `starting ${ctx.spec.name}`);
    } catch (err) {
      const ex = await exited;
      throw new PvError('start-failed', `container ${ctx.spec.name}: init could not be started (exit ${ex.code ?? ex.signal}); see ${ctx.storage.logsDir(ctx.rev, ctx.spec.name)}/console.log`, { cause: err });
    }
    const parent = child.pid!;
    const initPid = initPidOf(parent) ?? parent;
    return {
      pid: initPid,
      exited,
      // The init is PID 1 of its namespace and only sees signals it handles: SIGTERM first, SIGKILL after the grace.
      stop: (graceMs) => terminate(initPid, exited, graceMs),
    };
  }
}

/** The forked child of `unshare --fork`, i.e. the container's init as the host sees it. */
function initPidOf(parent: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim().split(/\s+/)[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}
