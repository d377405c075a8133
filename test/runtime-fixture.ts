/**
 * Builds real revisions for the runtime tests and bench: busybox trees (static /bin/busybox plus applet
 * links), optionally curl with its shared libraries (a real HTTP-over-unix-socket client for the control
 * socket), packed with the real mksquashfs, committed into a pvr repo by the revision core.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { initRepo } from '../src/revision/pvr-repo.ts';
import { repoRoot } from './helpers/cli.ts';
import { sh } from './helpers/env.ts';

const APPLETS = ['sh', 'sleep', 'cat', 'echo', 'hostname', 'ls', 'ps', 'mkdir', 'touch', 'grep', 'wget', 'kill', 'true', 'false', 'test', 'env', 'date', 'rm', 'stat', 'readlink', 'wc', 'trap', 'mount', 'head', 'tr', 'seq', 'printf'];

export interface ContainerDef {
  name: string;
  /** Body of /etc/init.sh, run by /bin/sh as the container's init. */
  init: string;
  group?: string;
  statusGoal?: 'MOUNTED' | 'STARTED' | 'READY';
  restartPolicy?: 'system' | 'container';
  autoRecovery?: Record<string, unknown>;
  overlay?: 'boot' | 'permanent' | 'revision';
  /** `_config/<name>/<path>` files. */
  config?: Record<string, string>;
  /** Copy curl and its libraries into the tree. */
  curl?: boolean;
  lxcExtra?: string[];
}

function busyboxTree(root: string, withCurl: boolean): void {
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'var', 'usr/bin']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(realpathSync(sh('sh', ['-c', 'command -v busybox']).trim()), join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  for (const a of APPLETS) if (a !== 'trap') symlinkSync('busybox', join(root, 'bin', a));
  if (withCurl) {
    const curl = realpathSync('/usr/bin/curl');
    const libs = spawnSync('ldd', [curl], { encoding: 'utf8' })
      .stdout.split('\n')
      .map((l) => /(\/\S+) \(0x/.exec(l)?.[1])
      .filter((p): p is string => !!p);
    for (const f of [curl, ...libs]) {
      const dest = join(root, f === curl ? '/usr/bin/curl' : f);
      mkdirSync(dirname(dest), { recursive: true });
      copyFileSync(realpathSync(f), dest);
      chmodSync(dest, 0o755);
    }
  }
}

/** Write a revision with these containers into `<dir>/repo`; returns the repo path. */
export async function buildRevision(dir: string, containers: ContainerDef[], options: { deviceJson?: unknown } = {}): Promise<string> {
  const work = join(dir, 'work');
  const repoDir = join(dir, 'repo');
  mkdirSync(repoDir, { recursive: true });
  for (const c of containers) {
    const tree = join(work, 'trees', c.name);
    busyboxTree(tree, c.curl ?? false);
    writeFileSync(join(tree, 'etc/init.sh'), c.init);
    const cdir = join(repoDir, c.name);
    mkdirSync(cdir, { recursive: true });
    sh('mksquashfs', [tree, join(cdir, 'root.squashfs'), '-noappend', '-quiet', '-all-root', '-comp', 'gzip', '-mkfs-time', '0', '-all-time', '0']);
    const lxc = [
      'lxc.tty.max = 4',
      'lxc.pty.max = 1024',
      'lxc.cgroup.devices.allow = a',
      `lxc.rootfs.path = overlayfs:/volumes/${c.name}/root.squashfs:/volumes/${c.name}/lxc-overlay/upper`,
      'lxc.init.cmd = /bin/sh /etc/init.sh',
      'lxc.mount.auto = proc sys:rw cgroup-full',
      'lxc.mount.entry = tmpfs run tmpfs rw,nodev,relatime,mode=755,create=dir 0 0',
      ...(c.lxcExtra ?? []),
    ];
    writeFileSync(join(cdir, 'lxc.container.conf'), lxc.join('\n') + '\n');
    const run: Record<string, unknown> = {
      '#spec': 'service-manifest-run@1',
      config: 'lxc.container.conf',
      name: c.name,
      'root-volume': 'root.squashfs',
      storage: { 'lxc-overlay': { persistence: c.overlay ?? 'boot' } },
      type: 'lxc',
      volumes: [],
    };
    if (c.group) run.group = c.group;
    if (c.statusGoal) run.status_goal = c.statusGoal;
    if (c.restartPolicy) run.restart_policy = c.restartPolicy;
    if (c.autoRecovery) run.auto_recovery = c.autoRecovery;
    writeFileSync(join(cdir, 'run.json'), JSON.stringify(run));
    for (const [path, content] of Object.entries(c.config ?? {})) {
      const f = join(repoDir, '_config', c.name, path);
      mkdirSync(dirname(f), { recursive: true });
      writeFileSync(f, content);
    }
  }
  if (options.deviceJson) writeFileSync(join(repoDir, 'device.json'), JSON.stringify(options.deviceJson));
  const repo = await initRepo(repoDir);
  await repo.commitTree();
  return repoDir;
}

export interface CtrlReply {
  status: number;
  body: string;
  json(): any;
}

/** One HTTP request over the control socket, as curl --unix-socket would send it. */
export function ctrl(socketPath: string, method: string, path: string, body?: unknown): Promise<CtrlReply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const req = request({ socketPath, method, path, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, json: () => JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

export interface Booted {
  child: ChildProcess;
  exit: Promise<number>;
  stderr: () => string;
}

export function startRuntime(storage: string, ctrlPath: string, driver: string, extra: string[] = []): Booted {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), 'run', '--storage', storage, '--ctrl', ctrlPath, '--driver', driver, '--secureboot', 'disabled', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout!.resume();
  const exit = new Promise<number>((resolve) => child.on('exit', (code, sig) => resolve(code ?? (sig ? 128 : -1))));
  return { child, exit, stderr: () => err };
}

/** Poll GET /containers until `done` holds (or fail with the last answer). */
export async function waitFor(ctrlPath: string, done: (cs: any[]) => boolean, what: string, timeoutMs = 20000): Promise<any[]> {
  const t0 = Date.now();
  let last: unknown;
  while (Date.now() - t0 < timeoutMs) {
    try {
      const r = await ctrl(ctrlPath, 'GET', '/containers');
      last = r.body;
      if (r.status === 200 && done(r.json())) return r.json();
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}; last /containers: ${String(last)}`);
}

