/**
 * The subset of LXC's container configuration that pvr writes (templates/builtin-lxc-docker.go) and this
 * runtime applies. Keys LXC knows but we do not apply are listed as `ignored`; keys nobody knows are
 * `unknown`, so a caller can report both instead of silently dropping them.
 */
import { InvalidInputError } from '../src/errors.ts';
import { splitShellWords } from '../src/util/shell-words.ts';

export interface MountEntry {
  source: string;
  /** Relative to the container root, as LXC writes it (no leading slash). */
  target: string;
  fstype: string;
  options: string[];
}

export interface RootfsPath {
  /** `overlayfs:<lower>:<upper>` (pvr) or a plain directory/image path. */
  kind: 'overlayfs' | 'dir';
  lower: string;
  upper?: string;
}

export interface LxcConfig {
  initCmd: string[];
  initCwd?: string;
  rootfs?: RootfsPath;
  mountEntries: MountEntry[];
  /** `lxc.mount.auto` words, e.g. `proc`, `sys:rw`, `cgroup-full`. */
  mountAuto: string[];
  environment: Record<string, string>;
  /** Namespaces shared with the runtime (`lxc.namespace.keep`), e.g. `net`, `ipc`, `user`. */
  namespaceKeep: string[];
  utsName?: string;
  capDrop: string[];
  /** Known LXC keys this runtime does not enforce (tty/pty counts, cgroup device rules, console, log). */
  ignored: string[];
  /** Keys outside LXC's vocabulary as pvr uses it: reported to the user. */
  unknown: string[];
}

const ignoredPrefixes = ['lxc.tty.', 'lxc.pty.', 'lxc.cgroup.', 'lxc.cgroup2.', 'lxc.console.', 'lxc.log.', 'lxc.apparmor.', 'lxc.seccomp.', 'lxc.autodev', 'lxc.arch', 'lxc.signal.', 'lxc.cap.keep', 'lxc.net.', 'lxc.include', 'lxc.hook.', 'lxc.start.', 'lxc.prlimit.', 'lxc.sysctl.', 'lxc.idmap', 'lxc.init.uid', 'lxc.init.gid'];

/** Split a command line as LXC does for `lxc.init.cmd`: whitespace separates, quotes group, backslash escapes. */
export function splitCommand(line: string, file?: string): string[] {
  const { words, unterminated } = splitShellWords(line);
  if (unterminated) throw new InvalidInputError('lxc-config', `unterminated ${unterminated} quote in lxc.init.cmd; close the quote`, { file });
  return words;
}

function parseMountEntry(value: string, file?: string): MountEntry {
  const f = value.trim().split(/\s+/);
  if (f.length < 4) throw new InvalidInputError('lxc-config', `lxc.mount.entry '${value}' needs "source target fstype options"; fix the entry`, { file });
  return { source: f[0], target: f[1].replace(/^\/+/, ''), fstype: f[2], options: f[3].split(',').filter(Boolean) };
}

function parseRootfs(value: string): RootfsPath {
  if (value.startsWith('overlayfs:')) {
    const [lower, upper] = value.slice('overlayfs:'.length).split(':');
    return { kind: 'overlayfs', lower, upper };
  }
  return { kind: 'dir', lower: value.replace(/^dir:/, '') };
}

export function parseLxcConfig(text: string, file?: string): LxcConfig {
  const cfg: LxcConfig = { initCmd: [], mountEntries: [], mountAuto: [], environment: {}, namespaceKeep: [], capDrop: [], ignored: [], unknown: [] };
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) throw new InvalidInputError('lxc-config', `line ${n + 1}: expected "key = value", got '${line.slice(0, 80)}'`, { file });
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    switch (key) {
      case 'lxc.init.cmd':
        cfg.initCmd = splitCommand(value, file);
        break;
      case 'lxc.init.cwd':
        cfg.initCwd = value;
        break;
      case 'lxc.rootfs.path':
      case 'lxc.rootfs': // pre-3.0 spelling in old pvr templates
        cfg.rootfs = parseRootfs(value);
        break;
      case 'lxc.mount.entry':
        cfg.mountEntries.push(parseMountEntry(value, file));
        break;
      case 'lxc.mount.auto':
        cfg.mountAuto.push(...value.split(/\s+/).filter(Boolean));
        break;
      case 'lxc.environment': {
        const i = value.indexOf('=');
        if (i <= 0) cfg.environment[value] = process.env[value] ?? ''; // LXC: a bare name inherits the host value
        else cfg.environment[value.slice(0, i)] = value.slice(i + 1);
        break;
      }
      case 'lxc.namespace.keep':
        cfg.namespaceKeep.push(...value.split(/\s+/).filter(Boolean));
        break;
      case 'lxc.uts.name':
      case 'lxc.utsname':
        cfg.utsName = value;
        break;
      case 'lxc.cap.drop':
        cfg.capDrop.push(...value.split(/\s+/).filter(Boolean));
        break;
      default:
        if (ignoredPrefixes.some((p) => key === p || key.startsWith(p))) cfg.ignored.push(key);
        else cfg.unknown.push(key);
    }
  }
  return cfg;
}
