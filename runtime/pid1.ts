/**
 * PID 1 duties. Node cannot waitpid(-1), so orphan reaping is done by runtime/pv-init, a POSIX shell that
 * is the actual PID 1 (its `wait` reaps every child, orphans included) and runs the runtime as its child
 * with PV_INIT=1. The runtime then mounts the API filesystems when they are absent, turns SIGTERM/SIGINT
 * into a clean shutdown and logs, instead of dying on, any stray exception.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import type { RuntimeLog } from './log.ts';

/** Running as the system's (or a PID namespace's) init: PID 1 itself, or the child of runtime/pv-init. */
export function isInit(): boolean {
  return process.pid === 1 || process.env.PV_INIT === '1';
}

const SYSTEM_MOUNTS: [string, string, string][] = [
  ['/proc', 'proc', 'nosuid,nodev,noexec'],
  ['/sys', 'sysfs', 'nosuid,nodev,noexec'],
  ['/dev', 'devtmpfs', 'nosuid,mode=0755'],
  ['/run', 'tmpfs', 'nosuid,nodev,mode=0755'],
];

function mountedPoints(): Set<string> {
  try {
    return new Set(
      readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[4])
        .filter(Boolean),
    );
  } catch {
    return new Set();
  }
}

/** Mount /proc, /sys, /dev and /run where nothing is mounted yet; returns what was mounted. */
export function mountSystem(log: RuntimeLog): string[] {
  const done: string[] = [];
  for (const [dir, type, opts] of SYSTEM_MOUNTS) {
    if (mountedPoints().has(dir)) continue;
    // Without /proc nothing is known: mount it, and check the others once it is there.
    if (dir !== '/proc' && !existsSync('/proc/self/mountinfo')) continue;
    mkdirSync(dir, { recursive: true });
    const r = spawnSync('mount', ['-t', type, '-o', opts, type, dir], { encoding: 'utf8' });
    if (r.status === 0) done.push(dir);
    else log.warn('init', `could not mount ${type} on ${dir}: ${(r.stderr || r.error?.message || '').trim()}`);
  }
  if (done.length) log.info('init', `mounted ${done.join(', ')}`);
  return done;
}

/**
 * Keep the process alive whatever happens: exceptions are logged, SIGTERM/SIGINT (forwarded by pv-init
 * or sent by Ctrl-C) call `shutdown` once; a second signal while shutting down is ignored.
 */
export function guardProcess(log: RuntimeLog, shutdown: (signal: NodeJS.Signals) => void): void {
  process.on('uncaughtException', (err) => log.error('init', `uncaught exception (kept running): ${err.stack ?? err}`));
  process.on('unhandledRejection', (err) => log.error('init', `unhandled rejection (kept running): ${(err as Error)?.stack ?? err}`));
  let called = false;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (called) return;
      called = true;
      log.info('init', `${sig} received: stopping every container`);
      shutdown(sig);
    });
  }
  if (process.pid === 1) log.warn('init', 'node is PID 1 itself and cannot reap orphans; start the runtime through runtime/pv-init');
}
