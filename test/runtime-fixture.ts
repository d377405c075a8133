/**
 * Builds real revisions for the runtime tests and bench: busybox trees (static /bin/busybox plus applet
 * links), optionally curl with its shared libraries (a real HTTP-over-unix-socket client for the control
 * socket), packed with the real mksquashfs, committed into a pvr repo by the revision core.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { parseJson } from '../src/revision/canonical-json.ts';
import { initRepo } from '../src/revision/pvr-repo.ts';
import { objectRefs, type State } from '../src/revision/state.ts';
import { RUNTIME_ENV, RUNTIME_NODE_ARGS } from '../runtime/node-settings.ts';
import { Storage } from '../runtime/storage.ts';
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
  /** Extra run.json storage volumes (name → persistence), e.g. pvr's docker-… volumes. */
  volumes?: Record<string, 'permanent' | 'revision' | 'boot'>;
  /** Extra squashfs images listed in run.json `volumes` (file name → the files they hold). */
  images?: Record<string, Record<string, string>>;
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
    for (const [image, files] of Object.entries(c.images ?? {})) {
      const itree = join(work, 'images', c.name, image);
      for (const [path, content] of Object.entries(files)) {
        mkdirSync(dirname(join(itree, path)), { recursive: true });
        writeFileSync(join(itree, path), content);
      }
      sh('mksquashfs', [itree, join(cdir, image), '-noappend', '-quiet', '-all-root', '-mkfs-time', '0', '-all-time', '0']);
    }
    const run: Record<string, unknown> = {
      '#spec': 'service-manifest-run@1',
      config: 'lxc.container.conf',
      name: c.name,
      'root-volume': 'root.squashfs',
      storage: { ...Object.fromEntries(Object.entries(c.volumes ?? {}).map(([k, v]) => [k, { persistence: v }])), 'lxc-overlay': { persistence: c.overlay ?? 'boot' } },
      type: 'lxc',
      volumes: Object.keys(c.images ?? {}),
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

export function startRuntime(storage: string, ctrlPath: string, driver: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Booted {
  // Started as runtime/pv-init starts it (runtime/node-settings.ts).
  const child = spawn(process.execPath, [...RUNTIME_NODE_ARGS, join(repoRoot, 'bin/pvmigrate.js'), 'run', '--storage', storage, '--ctrl', ctrlPath, '--driver', driver, '--secureboot', 'disabled', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...RUNTIME_ENV, ...env },
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


// ------------------------------------------------------------------------------------------ power cuts

const loopInit = 'trap "exit 0" TERM\nwhile :; do sleep 0.1; done\n';
const sysC = (tag: string): ContainerDef => ({ name: 'sys', group: 'root', init: `echo sys-${tag}\n` + loopInit });
const appC = (tag: string): ContainerDef => ({ name: 'app', group: 'app', init: `echo app-${tag}\n` + loopInit });

export interface CrashPoint {
  /** 1: the runtime taking the update; 2: the runtime booting the try (reboot updates). */
  phase: 1 | 2;
  step: number;
  what: string;
}

export interface CampaignResult {
  /** The injection points cut, per mode. */
  points: (CrashPoint & { torn: boolean })[];
  failures: string[];
}

async function runUntilExit(storage: string, ctrlPath: string, crash: { after: number; torn: boolean } | undefined, action?: () => Promise<void>): Promise<{ code: number; stderr: string }> {
  const env = crash === undefined ? {} : { PV_CRASH_AFTER: String(crash.after), PV_CRASH_MODE: crash.torn ? 'torn' : 'after' };
  // Every revision of the campaign is healthy: a generous goals timeout keeps a loaded CI machine from
  // turning a slow try into a rollback the check would then (rightly) call wrong.
  const rt = startRuntime(storage, ctrlPath, 'process', ['--commit-delay', '0.2', '--goals-timeout', '30'], env);
  try {
    const up = waitFor(ctrlPath, (cs) => cs.length > 0 && cs.every((c) => c.status === 'STARTED'), 'up', 20000);
    up.catch(() => undefined); // the runtime may end (crash, reboot) before it is ever up
    const ended = rt.exit.then((code) => ({ code }));
    const first = await Promise.race([up.then(() => 'up' as const), ended]);
    if (first !== 'up') return { code: first.code, stderr: rt.stderr() };
    if (action) await action().catch(() => undefined);
    return { code: await rt.exit, stderr: rt.stderr() };
  } finally {
    rt.child.kill('SIGKILL');
  }
}

const stepsOf = (stderr: string): string[] => [...stderr.matchAll(/durable step \d+: (.*)/g)].map((m) => m[1]);

/** Temp files left in storage (names starting with '.' and ending .tmp, or object-store .incoming- files). */
function leftovers(dir: string): string[] {
  const found: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && /^\..*\.tmp$|^\.incoming-/.test(e.name)) found.push(join(e.parentPath, e.name));
  }
  return found;
}

export interface CampaignOptions {
  /** Which points to cut (default: all). */
  pick?: (p: CrashPoint) => boolean;
  /** Cut right after the step, in its middle (torn temp file), or both (default: after). */
  modes?: ('after' | 'torn')[];
  /** Points run at once, each in its own storage copy and socket (default 3: the runtimes mostly wait). */
  parallel?: number;
}

async function progressStatus(ctrlPath: string, rev: string): Promise<string | undefined> {
  const r = await ctrl(ctrlPath, 'GET', `/steps/${rev}/progress`).catch(() => undefined);
  return r?.status === 200 ? (r.json().status as string) : undefined;
}

/**
 * Kill the runtime with SIGKILL right after (or, torn, in the middle of) durable step k of an update, for
 * every k (or those `pick` selects), boot again until stable, and check: a complete revision runs (the last
 * DONE, or the update when the kill came after its commit), its objects hash right and every key of its
 * state is in its trail (a torn temp file, left behind, is never used), and a later update succeeds.
 * Throws nothing: failures are returned, one line per point.
 */
export async function crashCampaign(dir: string, kind: 'reboot' | 'in-place', options: CampaignOptions = {}): Promise<CampaignResult> {
  const r0 = await buildRevision(join(dir, 'r0'), [sysC('v1'), appC('v1')]);
  const r1 = await buildRevision(join(dir, 'r1'), kind === 'reboot' ? [sysC('v2'), appC('v1')] : [sysC('v1'), appC('v2')]);
  const later = { v1: await buildRevision(join(dir, 'l1'), [sysC('v1'), appC('v9')]), v2: await buildRevision(join(dir, 'l2'), [sysC('v2'), appC('v9')]) };
  const base = join(dir, 'base');
  sh(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), 'deploy', r0, '--storage', base]);
  const pvcontrol = (ctrlPath: string, ...args: string[]) =>
    new Promise<void>((resolve) => spawn(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), 'pvcontrol', '--socket', ctrlPath, ...args], { stdio: 'ignore' }).on('exit', () => resolve()));
  /** The final status of `rev`; undefined once the runtime is gone (cut, rebooted) or after 60 s. */
  const waitStatus = async (ctrlPath: string, rev: string, final: string[]) => {
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
      const st = await progressStatus(ctrlPath, rev);
      if (st === undefined || final.includes(st)) return st;
      await new Promise((r) => setTimeout(r, 50));
    }
    return undefined;
  };
  const takeUpdate = (ctrlPath: string) => async () => {
    await pvcontrol(ctrlPath, 'steps', 'install', r1, 'locals/r1');
    await ctrl(ctrlPath, 'POST', '/commands', { op: 'LOCAL_RUN', payload: 'locals/r1' });
    // In-place updates end in the same process: wait for the final status, then power off.
    await waitStatus(ctrlPath, 'locals/r1', ['UPDATED', 'DONE', 'ERROR', 'WONTGO']);
    await ctrl(ctrlPath, 'POST', '/commands', { op: 'POWEROFF_DEVICE' });
  };
  // Once up: a boot that tries a revision waits for its verdict (commit or rollback), any other powers off.
  const settle = (ctrlPath: string, storage: string) => async () => {
    const trying = (await new Storage(storage).readBootEnv()).pv_try;
    if (trying) await waitStatus(ctrlPath, trying, ['UPDATED', 'DONE', 'ERROR', 'WONTGO']);
    await ctrl(ctrlPath, 'POST', '/commands', { op: 'POWEROFF_DEVICE' });
  };
  const fresh = (name: string) => {
    const s = join(dir, name);
    sh('rm', ['-rf', s]);
    sh('cp', ['-a', base, s]);
    return s;
  };

  // Trace run: the durable steps of each phase, without crashing.
  const trace = fresh('trace');
  const traceCtrl = join(dir, 'trace-ctrl');
  const never = { after: 1e9, torn: false };
  const p1 = await runUntilExit(trace, traceCtrl, never, takeUpdate(traceCtrl));
  const points: CrashPoint[] = stepsOf(p1.stderr).map((what, i) => ({ phase: 1, step: i + 1, what }));
  if (kind === 'reboot') {
    const p2 = await runUntilExit(trace, traceCtrl, never, settle(traceCtrl, trace));
    points.push(...stepsOf(p2.stderr).map((what, i) => ({ phase: 2 as const, step: i + 1, what })));
  }
  const chosen = (options.modes ?? ['after']).flatMap((m) => points.filter(options.pick ?? (() => true)).map((p) => ({ ...p, torn: m === 'torn' })));
  const baseEnv = await new Storage(base).readBootEnv();

  /**
   * What must run after a cut, by Pantavisor's boot rules applied to the boot environment as durable at the
   * cut (the last `boot env` step completed before it; a torn step never took effect): pv_try set and not yet
   * tried → the next boot tries it, and the try (healthy here) commits it; pv_try already being tried
   * (pv_trying = pv_try) → that try crashed: boot pv_rev and mark the tried revision ERROR; else pv_rev.
   */
  const expectedAfter = (pt: CrashPoint & { torn: boolean }): { rev: string; rolledBack?: string } => {
    let env = baseEnv;
    for (const p of points) {
      const durable = p.phase < pt.phase || (p.phase === pt.phase && (pt.torn ? p.step < pt.step : p.step <= pt.step));
      if (durable && p.what.startsWith('boot env ')) env = JSON.parse(p.what.slice('boot env '.length)) as typeof env;
    }
    if (env.pv_try && env.pv_try !== env.pv_rev) return env.pv_trying === env.pv_try ? { rev: env.pv_rev, rolledBack: env.pv_try } : { rev: env.pv_try };
    return { rev: env.pv_rev };
  };

  const cutAndCheck = async (pt: CrashPoint & { torn: boolean }, slot: string): Promise<void> => {
    const torn = pt.torn;
    const s = fresh(`run-${slot}`);
    const ctrlPath = join(dir, `ctrl-${slot}`);
    if (pt.phase === 2) await runUntilExit(s, ctrlPath, undefined, takeUpdate(ctrlPath));
    const cut = await runUntilExit(s, ctrlPath, { after: pt.step, torn }, pt.phase === 1 ? takeUpdate(ctrlPath) : settle(ctrlPath, s));
    const killed = new RegExp(`PV_CRASH_AFTER=${pt.step}: killed ${torn ? 'tearing' : 'after'} durable step ${pt.step} \\((.*)\\)`).exec(cut.stderr);
    if (!killed) throw new Error(`no kill happened: ${cut.stderr.slice(-300)}`);
    if (killed[1] !== pt.what) throw new Error(`killed at '${killed[1]}', not the traced '${pt.what}'`);
    // A torn write leaves its half-written temp file (a link step leaves the trail link removed instead).
    const torn0 = leftovers(s);
    if (torn && !pt.what.startsWith('link ') && torn0.length === 0) throw new Error('the torn write left no temp file');
    // Boot until stable: a rollback or a try may need more than one boot.
    let running: string | undefined;
    for (let boot = 0; boot < 4 && !running; boot++) {
      const r = await runUntilExit(s, ctrlPath, undefined, settle(ctrlPath, s));
      if (r.code === 0) running = (await new Storage(s).readBootEnv()).pv_rev;
    }
    if (!running) throw new Error('never booted to a stable revision');
    const st = new Storage(s);
    const env = await st.readBootEnv();
    if (env.pv_try) throw new Error(`pv_try still set after settling: ${JSON.stringify(env)}`);
    const expected = expectedAfter(pt);
    if (running !== expected.rev) throw new Error(`boots ${running}, expected ${expected.rev}`);
    if (expected.rolledBack) {
      // The crashed try is marked as Pantavisor marks it when nothing else was recorded.
      const p = await st.readProgress(expected.rolledBack);
      if (p?.status !== 'ERROR' || p['status-msg'] !== 'Unexpected rollback') throw new Error(`${expected.rolledBack} after its crashed try: ${p?.status} "${p?.['status-msg']}", expected ERROR "Unexpected rollback"`);
    }
    const state = parseJson(readFileSync(st.statePath(running))) as State;
    for (const sha of objectRefs(state).keys()) {
      const v = await st.objects.verify(sha);
      if (v.status !== 'ok') throw new Error(`object ${sha} of ${running}: ${v.status}`);
    }
    for (const key of Object.keys(state)) {
      if (key !== '#spec' && !existsSync(join(st.trailDir(running), key))) throw new Error(`trail ${running} lacks ${key}`);
    }
    if (running === 'locals/r1' && !existsSync(st.donePath('locals/r1'))) throw new Error('committed without .pv/done');
    // A later in-place update on top of whatever runs must still succeed.
    const sysV2 = kind === 'reboot' && running === 'locals/r1';
    let current: string | undefined;
    const fin = await runUntilExit(s, ctrlPath, undefined, async () => {
      // The revision actually running (the socket's view), not only what the boot environment names.
      current = ((await ctrl(ctrlPath, 'GET', '/steps')).json() as { name: string; current: boolean }[]).find((x) => x.current)?.name;
      await pvcontrol(ctrlPath, 'steps', 'install', sysV2 ? later.v2 : later.v1, 'locals/later');
      await ctrl(ctrlPath, 'POST', '/commands', { op: 'LOCAL_RUN', payload: 'locals/later' });
      await waitStatus(ctrlPath, 'locals/later', ['UPDATED', 'ERROR', 'WONTGO']);
      await ctrl(ctrlPath, 'POST', '/commands', { op: 'POWEROFF_DEVICE' });
    });
    if (current !== expected.rev) throw new Error(`the runtime runs ${current}, expected ${expected.rev}`);
    const lp = await st.readProgress('locals/later');
    if (fin.code !== 0 || lp?.status !== 'UPDATED') throw new Error(`later update ended ${lp?.status ?? 'nowhere'} (exit ${fin.code})`);
  };

  const failures: string[] = [];
  const queue = [...chosen];
  const worker = async (slot: number) => {
    for (let pt = queue.shift(); pt; pt = queue.shift()) {
      try {
        await cutAndCheck(pt, String(slot));
      } catch (err) {
        failures.push(`${kind}${pt.torn ? ' torn' : ''} phase ${pt.phase} step ${pt.step} (${pt.what}): ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.parallel ?? 3) }, (_, i) => worker(i)));
  return { points: chosen, failures };
}

// ------------------------------------------------------------------------------------------ soak

/** One runtime process's open fds and RSS at the start of one soak cycle. */
export interface SoakSample {
  cycle: number;
  pid: number;
  fds: number;
  rssMiB: number;
}

export interface SoakResult {
  summary: string;
  /** Empty when fds and RSS stayed flat within each runtime process and GC kept exactly what it should. */
  failures: string[];
  samples: SoakSample[];
}

/** Cycles a process serves before its fds are taken as the baseline (boot-time opens settle). */
const WARM_UP = 3;
/** Open fds a process may gain between its baseline and its last cycle. */
const FD_SLACK = 2;
/** RSS trend allowed within one process, in MiB per 100 cycles (a leak of 100 KiB per cycle is ~10). */
const RSS_TREND_MIB = 8;
/** RSS a fresh runtime's baseline may exceed the first one's by (one young-generation resize and noise). */
const RESTART_RSS_SLACK_MIB = 8;
/** Cycles a process must serve for its RSS trend to be judged (shorter spans are noise). */
const TREND_MIN_CYCLES = 60;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export interface ProcessTrend {
  pid: number;
  cycles: number;
  fds: { first: number; last: number };
  /** RSS at the baseline, at the end, and the medians of the second and last quarters of its cycles. */
  rss: { first: number; last: number; q2: number; q4: number; perHundred: number } | undefined;
}

/**
 * Flatness of a soak's samples, per runtime process: fds at its last cycle within FD_SLACK of its
 * baseline (its WARM_UP-th cycle; processes that served fewer than 8 cycles are not judged), and, for
 * processes that served TREND_MIN_CYCLES or more, the RSS trend: median of the last quarter of its cycles
 * against the median of the second quarter, scaled to 100 cycles, within RSS_TREND_MIB. Medians of
 * quarters, not two single samples, so noise and a GC that ran just before one sample do not count, and a
 * steady leak does, however it is spread; a one-off step (a young-generation resize) in the first quarter
 * is warm-up, a later one counts spread over the quarters' distance (5 MiB over 140 cycles stays within
 * the limit). Across restarts: the baseline (median of cycles WARM_UP–8) of the last process that served
 * 8 cycles against the first's.
 */
export function judgeFlat(samples: SoakSample[]): { failures: string[]; trends: ProcessTrend[] } {
  const byPid = new Map<number, SoakSample[]>();
  for (const s of samples) {
    if (!byPid.has(s.pid)) byPid.set(s.pid, []);
    byPid.get(s.pid)!.push(s);
  }
  const failures: string[] = [];
  const trends: ProcessTrend[] = [];
  for (const [pid, all] of byPid) {
    if (all.length < 8) continue;
    const run = all.slice(WARM_UP - 1);
    const fds = { first: run[0]!.fds, last: run[run.length - 1]!.fds };
    if (fds.last > fds.first + FD_SLACK) failures.push(`runtime ${pid}: open fds grew ${fds.first} → ${fds.last} over ${run.length} cycles`);
    let rss: ProcessTrend['rss'];
    if (run.length >= TREND_MIN_CYCLES) {
      const q = Math.floor(run.length / 4);
      const q2 = median(run.slice(q, 2 * q).map((s) => s.rssMiB));
      const q4 = median(run.slice(run.length - q).map((s) => s.rssMiB));
      const perHundred = ((q4 - q2) / (run.length - 2 * q)) * 100; // the quarters' centres are n - 2q cycles apart
      rss = { first: run[0]!.rssMiB, last: run[run.length - 1]!.rssMiB, q2, q4, perHundred };
      if (perHundred > RSS_TREND_MIB) {
        failures.push(`runtime ${pid}: RSS grows ${perHundred.toFixed(1)} MiB per 100 cycles (median ${q2.toFixed(1)} MiB in the second quarter of its ${run.length} cycles, ${q4.toFixed(1)} MiB in the last; limit ${RSS_TREND_MIB})`);
      }
    }
    trends.push({ pid, cycles: run.length, fds, rss });
  }
  if (!trends.some((t) => t.rss)) failures.push(`no runtime process served ${TREND_MIN_CYCLES} cycles: nothing to judge the RSS trend by`);
  // Across reboots: every fresh runtime starts from the same storage-sized baseline. Growth there (state or
  // trails piling up, a cache persisted and reloaded) shows as the last process starting higher than the first.
  const baselines = [...byPid.values()]
    .filter((all) => all.length >= 8)
    .map((all) => {
      const early = all.slice(WARM_UP - 1, 8);
      return { cycle: all[WARM_UP - 1]!.cycle, fds: median(early.map((x) => x.fds)), rssMiB: median(early.map((x) => x.rssMiB)) };
    });
  if (baselines.length >= 2) {
    const [first, last] = [baselines[0]!, baselines[baselines.length - 1]!];
    const series = baselines.map((b) => `cycle ${b.cycle}: ${b.fds} fds, ${b.rssMiB.toFixed(0)} MiB`).join('; ');
    if (last.fds > first.fds + FD_SLACK) failures.push(`across ${baselines.length} runtime starts: baseline open fds grew ${first.fds} → ${last.fds} (${series})`);
    if (last.rssMiB > first.rssMiB + RESTART_RSS_SLACK_MIB) failures.push(`across ${baselines.length} runtime starts: baseline RSS grew ${first.rssMiB.toFixed(0)} → ${last.rssMiB.toFixed(0)} MiB, limit +${RESTART_RSS_SLACK_MIB} (${series})`);
  }
  return { failures, trends };
}

export interface SoakOptions {
  cycles: number;
  /** A reboot update (system container flip) every n-th cycle; 0: none. */
  rebootEvery: number;
  /** A failing revision (READY never signalled: ERROR and a rollback) every n-th cycle; 0: none. */
  failEvery: number;
  /** From this cycle on, in-place updates only, so one runtime process serves the rest (default: never). */
  inPlaceFrom?: number;
}

/**
 * `cycles` update cycles in one storage (process driver): in-place app flips, a reboot (system container)
 * flip every `rebootEvery`-th cycle, a failing revision (READY never signalled) every `failEvery`-th; then
 * GC. Samples open fds and RSS of the runtime at the start of every cycle and judges them with judgeFlat.
 * After GC the storage must hold only the running and last committed trails and the objects they reference.
 */
export async function soakCycles(dir: string, o: SoakOptions): Promise<SoakResult> {
  const idle = loopInit;
  const combos: Record<string, string> = {};
  for (const sysV of ['A', 'B']) {
    for (const appV of ['A', 'B', 'F']) {
      combos[`${sysV}${appV}`] = await buildRevision(join(dir, `${sysV}${appV}`), [
        { name: 'sys', group: 'root', init: `echo sys${sysV}\n${idle}` },
        { name: 'app', group: 'app', init: `echo app${appV}\n${idle}`, statusGoal: appV === 'F' ? 'READY' : undefined },
      ]);
    }
  }
  const sigOf = (repo: string) => {
    const st = JSON.parse(readFileSync(join(repo, '.pvr/json'), 'utf8')) as Record<string, string>;
    return `${st['sys/root.squashfs']}|${st['app/root.squashfs']}`;
  };
  const bySig = new Map(Object.entries(combos).map(([k, repo]) => [sigOf(repo), k]));
  const storage = join(dir, 'storage');
  sh(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), 'deploy', combos.AA, '--storage', storage]);
  const ctrlPath = join(dir, 'pv-ctrl');
  const opts = ['--commit-delay', '0', '--goals-timeout', '2'];
  const boot = async () => {
    const r = startRuntime(storage, ctrlPath, 'process', opts);
    await waitFor(ctrlPath, (cs) => cs.length === 2 && cs.every((c) => c.status === 'STARTED'), 'soak up', 30000);
    return r;
  };
  const samples: SoakSample[] = [];
  const sample = (cycle: number, pid: number) =>
    samples.push({ cycle, pid, fds: readdirSync(`/proc/${pid}/fd`).length, rssMiB: Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024 });
  let rt = await boot();
  let restarts = 0;
  const sleep = (ms: number) => new Promise<false>((r) => setTimeout(() => r(false), ms));
  const currentRev = async () => ((await ctrl(ctrlPath, 'GET', '/steps')).json() as { name: string; current: boolean }[]).find((x) => x.current)!.name;
  // Until `rev` is final and the device runs a committed or updated revision, restarting the runtime on reboots.
  const stable = async (rev: string) => {
    for (;;) {
      if (await Promise.race([rt.exit.then(() => true), sleep(50)])) {
        restarts++;
        rt = await boot();
        continue;
      }
      const p = await progressStatus(ctrlPath, rev);
      const env = await new Storage(storage).readBootEnv();
      if (env.pv_try) continue;
      if (p === 'UPDATED' || p === 'DONE') return;
      if (p === 'ERROR') {
        if ((await currentRev().catch(() => rev)) !== rev) return;
        if (await Promise.race([rt.exit.then(() => true), sleep(5000)])) {
          restarts++;
          rt = await boot();
        }
        return;
      }
    }
  };
  const t0 = Date.now();
  for (let i = 1; i <= o.cycles; i++) {
    sample(i, rt.child.pid!);
    const cur = await currentRev();
    const combo = bySig.get(sigOf(join(storage, 'trails', cur)))!;
    const mixed = o.inPlaceFrom === undefined || i < o.inPlaceFrom;
    const target = !mixed ? `${combo[0]}${combo[1] === 'A' ? 'B' : 'A'}` : o.failEvery && i % o.failEvery === 0 ? `${combo[0]}F` : o.rebootEvery && i % o.rebootEvery === 0 ? `${combo[0] === 'A' ? 'B' : 'A'}${combo[1]}` : `${combo[0]}${combo[1] === 'A' ? 'B' : 'A'}`;
    const rev = `locals/c${i}`;
    const repo = combos[target];
    await ctrl(ctrlPath, 'PUT', `/steps/${rev}`, readFileSync(join(repo, '.pvr/json')));
    for (const sha of readdirSync(join(repo, '.pvr/objects'))) await ctrl(ctrlPath, 'PUT', `/objects/${sha}`, readFileSync(join(repo, '.pvr/objects', sha)));
    await ctrl(ctrlPath, 'POST', '/commands', { op: 'LOCAL_RUN', payload: rev });
    await stable(rev);
  }
  const { failures, trends } = judgeFlat(samples);
  const longest = trends.reduce<ProcessTrend | undefined>((a, t) => (!a || t.cycles > a.cycles ? t : a), undefined);
  const gc = (await ctrl(ctrlPath, 'POST', '/storage/gc')).json();
  const st = new Storage(storage);
  const env = await st.readBootEnv();
  const current = await currentRev();
  const revs = await st.listRevisions();
  const should = [...new Set([current, env.pv_rev])].sort();
  if (revs.join() !== should.join()) failures.push(`GC kept trails [${revs.join(', ')}], should keep [${should.join(', ')}]`);
  const needed = new Set(should.flatMap((r) => [...objectRefs(parseJson(readFileSync(st.statePath(r))) as State).keys()]));
  const objects = readdirSync(st.objectsDir).filter((n) => /^[0-9a-f]{64}$/.test(n));
  const extra = objects.filter((n) => !needed.has(n));
  const missing = [...needed].filter((n) => !objects.includes(n));
  if (extra.length || missing.length) failures.push(`GC left ${extra.length} unreferenced objects and lost ${missing.length} needed ones`);
  const marks = samples.filter((x) => [3, 50, 100, 200, o.cycles].includes(x.cycle));
  const summary =
    `soak: ${o.cycles} update cycles (reboot every ${o.rebootEvery || '—'}, failing every ${o.failEvery || '—'}${o.inPlaceFrom ? ` before cycle ${o.inPlaceFrom}` : ''}; ${restarts} runtime restarts) in ${((Date.now() - t0) / 1000).toFixed(0)} s; ` +
    `RSS at cycles ${marks.map((m) => m.cycle).join('/')}: ${marks.map((m) => m.rssMiB.toFixed(0)).join('/')} MiB; ` +
    (longest
      ? `longest-lived runtime (${longest.cycles} cycles): open fds ${longest.fds.first} → ${longest.fds.last}` +
        (longest.rss ? `, RSS ${longest.rss.first.toFixed(0)} → ${longest.rss.last.toFixed(0)} MiB, quarter medians ${longest.rss.q2.toFixed(1)} → ${longest.rss.q4.toFixed(1)} MiB (${longest.rss.perHundred.toFixed(1)} MiB per 100 cycles)` : '') +
        '; '
      : '') +
    `GC reclaimed ${gc.reclaimed} bytes, trails kept [${revs.join(', ')}] (should be [${should.join(', ')}]), ${objects.length} objects (${needed.size} referenced)`;
  await ctrl(ctrlPath, 'POST', '/commands', { op: 'POWEROFF_DEVICE' });
  await rt.exit;
  return { summary, failures, samples };
}
