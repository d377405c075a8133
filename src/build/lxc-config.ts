import type { PlanContainer } from '../split/plan.ts';

/** pvr's volume name for a persisted path: "docker-" + the path with "/" as "-" (templates/pvr-funcs.go). */
export function volumeName(path: string): string {
  return `docker-${path.replace(/\//g, '-')}`;
}

/** lxc.init.cmd as pvr writes it: the program bare, each argument in double quotes. */
function initCmd(argv: string[]): string {
  const quote = (s: string) => `"${s.replace(/(["\\])/g, '\\$1')}"`;
  const [exe, ...args] = argv;
  return [/[\s"'\\]/.test(exe!) ? quote(exe!) : exe!, ...args.map(quote)].join(' ');
}

export interface LxcConfigOptions {
  /** Bind the BSP's modules and firmware (mounted by the runtime) into the container. */
  bspMounts: { modules: boolean; firmware: boolean };
}

/**
 * lxc.container.conf in the shape of pvr's builtin docker template (pantacor/pvr templates/builtin-lxc-docker.go,
 * LXC 3 key names): overlay root over the container's root.squashfs (the runtime stacks root.ovl.squashfs
 * itself), init from the plan, environment, /dev, /storage and resolv.conf binds, one bind per persisted path.
 */
export function lxcContainerConf(c: PlanContainer, options: LxcConfigOptions): string {
  const lines = [
    'lxc.tty.max = 4',
    'lxc.pty.max = 1024',
    'lxc.cgroup.devices.allow = a',
    `lxc.rootfs.path = overlayfs:/volumes/${c.name}/root.squashfs:/volumes/${c.name}/lxc-overlay/upper`,
    `lxc.init.cmd = ${initCmd(c.init)}`,
  ];
  if (c.workdir) lines.push(`lxc.init.cwd = ${c.workdir}`);
  for (const [k, v] of Object.entries(c.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) lines.push(`lxc.environment = ${k}=${v}`);
  lines.push(
    'lxc.namespace.keep = user net ipc',
    'lxc.console.path = none',
    'lxc.mount.auto = proc sys:rw cgroup-full',
    'lxc.mount.entry = /dev/ dev none bind,rw,create=dir 0 0',
    'lxc.mount.entry = /storage pvstorage none bind,rw,create=dir 0 0',
    'lxc.mount.entry = /etc/resolv.conf etc/resolv.conf none bind,rw,create=file 0 0',
    'lxc.mount.entry = tmpfs run tmpfs rw,nodev,relatime,mode=755 0 0',
  );
  // The base OS loaded its own modules and firmware from the rootfs; they now live in the BSP, mounted by the
  // runtime on a device (optional: an emulator host may have none).
  if (options.bspMounts.modules) lines.push('lxc.mount.entry = /lib/modules lib/modules none bind,ro,optional,create=dir 0 0');
  if (options.bspMounts.firmware) lines.push('lxc.mount.entry = /lib/firmware lib/firmware none bind,ro,optional,create=dir 0 0');
  for (const path of Object.keys(c.storage).sort()) {
    if (path === 'lxc-overlay' || !path.startsWith('/')) continue;
    lines.push(`lxc.mount.entry = /volumes/${c.name}/${volumeName(path)} ${path.replace(/^\/+/, '')} none bind,rw,create=dir 0 0`);
  }
  return lines.join('\n') + '\n';
}
