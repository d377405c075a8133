import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { EnvironmentError, UsageError } from '../../errors.ts';
import { parseCommandArgs, positionals } from '../args.ts';
import { print, printJson } from '../output.ts';

export const summary = 'package the runtime as a Linux initrd (cpio newc, gzip) whose /init boots a storage disk';
export const usage = [
  'pvmigrate initrd -o FILE [--node PATH] [--busybox PATH] [--modules DIR] [--module NAME]… [--json]',
  '  --node PATH     node binary to include (default: this one); busybox, util-linux and modules must match its architecture',
  '  --busybox PATH  static busybox (default: busybox on PATH, from busybox-static)',
  "  --modules DIR   a kernel's /lib/modules/<version>: virtio_blk, ext4, loop, squashfs, overlay and their",
  '                  dependencies are added and loaded by /init (omit for a kernel with them built in)',
  '  --module NAME   one more module to load (repeatable)',
  'Boot: the kernel (console=ttyS0) with this initrd and the storage disk (ext4, whole device, default /dev/vda);',
  'kernel command line words PV_STORAGE_DEV=, PV_STORAGE_FSTYPE=, PV_DRIVER= and the runtime\'s PV_* settings',
  'reach /init. Exports dropped in <storage>/inbox/*.tgz are installed and run on boot.',
].join('\n');

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('initrd', argv, {
    output: { type: 'string', short: 'o' },
    node: { type: 'string' },
    busybox: { type: 'string' },
    modules: { type: 'string' },
    module: { type: 'string', multiple: true },
  });
  positionals('initrd', pos, [], usage);
  if (!values.output) throw new UsageError(`-o FILE is required; usage: ${usage}`);
  if (values.module?.length && !values.modules) throw new UsageError('--module NAME needs --modules DIR (where to find it)');
  for (const [flag, path] of [['--node', values.node], ['--busybox', values.busybox], ['--modules', values.modules]] as const) {
    if (path && !existsSync(path)) throw new EnvironmentError('not-found', `${flag} ${path}: no such file or directory`, { file: path });
  }
  const out = resolve(values.output);
  if (!existsSync(dirname(out))) throw new EnvironmentError('not-found', `cannot write ${out}: directory ${dirname(out)} does not exist`, { file: out });
  const { buildInitrd } = await import('../../../runtime/initrd/build.ts');
  const r = await buildInitrd({ output: out, node: values.node, busybox: values.busybox, modulesDir: values.modules, extraModules: values.module });
  if (values.json) printJson(r);
  else print(`wrote ${r.output}: ${(r.size / 1048576).toFixed(1)} MiB, ${r.members} members, ${r.machine}${r.modules.length ? `, modules ${r.modules.join(' ')}` : ', no kernel modules'} (sha256 ${r.sha256})`);
  return 0;
}
