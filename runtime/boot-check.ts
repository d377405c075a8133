/**
 * `pvmigrate validate <repo> --boot`: deploy the revision into a scratch storage, boot it, wait for every
 * status goal (or the timeout), report each container with its console tail, stop and clean up.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PvError } from '../src/errors.ts';
import { deployFrom } from './deploy.ts';
import { Runtime, type DriverName } from './runtime.ts';
import type { SecurebootMode } from '../src/revision/signature.ts';

export interface BootCheckOptions {
  /** Seconds for the whole boot to reach every goal (default 30). */
  timeout?: number;
  driver?: DriverName;
  secureboot?: SecurebootMode;
  /** Lines of console log kept per container. */
  tailLines?: number;
  /** After the goals, how long every container must stay at its goal (a process that dies right after
   * starting counts as STARTED for an instant), in ms; default 1000. */
  settleMs?: number;
}

export interface ContainerResult {
  name: string;
  group: string;
  status: string;
  status_goal: string;
  reached: boolean;
  /** Last lines of the container's console (stdout/stderr). */
  log_tail: string[];
}

export interface BootCheckResult {
  ok: boolean;
  rev: string;
  driver: DriverName;
  elapsed_ms: number;
  /** Set when the revision was refused before any container ran (verification failure). */
  refused?: string;
  containers: ContainerResult[];
}

export async function bootCheck(source: string, options: BootCheckOptions = {}): Promise<BootCheckResult> {
  const driver = options.driver ?? (process.getuid?.() === 0 ? 'namespace' : 'process');
  const timeoutMs = (options.timeout ?? 30) * 1000;
  const scratch = await mkdtemp(join(tmpdir(), 'pvmigrate-boot-'));
  const t0 = Date.now();
  try {
    const storageDir = join(scratch, 'storage');
    const { rev } = await deployFrom(source, storageDir);
    const rt = new Runtime({ storageDir, driver, ctrlPath: join(scratch, 'pv-ctrl'), secureboot: options.secureboot ?? 'lenient', checksum: true, groupTimeoutS: options.timeout ?? 30, stopGraceMs: 2000 });
    try {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([rt.boot(), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
      } catch (err) {
        if (!(err instanceof PvError) || rt.engine) throw err;
        return { ok: false, rev, driver, elapsed_ms: Date.now() - t0, refused: err.message, containers: [] };
      } finally {
        clearTimeout(timer);
      }
      const engine = rt.engine;
      const settle = Math.max(0, Math.min(options.settleMs ?? 1000, timeoutMs - (Date.now() - t0)));
      await new Promise((r) => setTimeout(r, settle));
      const containers: ContainerResult[] = [];
      for (const c of engine?.containers ?? []) {
        const log = await readFile(join(rt.storage.logsDir(rev, c.name), 'lxc', 'console.log'), 'utf8').catch(() => '');
        containers.push({
          name: c.name,
          group: c.ctx.spec.group,
          status: c.status,
          status_goal: c.goal,
          reached: c.goalReached(),
          log_tail: log.split('\n').filter(Boolean).slice(-(options.tailLines ?? 10)),
        });
      }
      return { ok: containers.length > 0 && containers.every((c) => c.reached), rev, driver, elapsed_ms: Date.now() - t0, containers };
    } finally {
      await rt.shutdown();
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Human report: one line per container, the console tail of those that missed their goal. */
export function formatBootCheck(r: BootCheckResult): string {
  if (r.refused) return `boot: revision refused: ${r.refused}`;
  const lines = [`boot (${r.driver} driver, ${(r.elapsed_ms / 1000).toFixed(1)} s): ${r.ok ? 'every status goal reached' : 'status goals NOT reached'}`];
  for (const c of r.containers) {
    lines.push(`  ${c.reached ? 'ok  ' : 'FAIL'} ${c.name} (${c.group}): ${c.status}, goal ${c.status_goal}`);
    if (!c.reached) lines.push(...c.log_tail.map((l) => `       | ${l}`));
  }
  return lines.join('\n');
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** JUnit XML: one testcase per container, a failure carrying its console tail. */
export function bootCheckJunit(r: BootCheckResult): string {
  const cases = r.refused
    ? [`  <testcase classname="boot" name="verify"><failure message="${xml(r.refused)}"/></testcase>`]
    : r.containers.map(
        (c) =>
          `  <testcase classname="boot.${xml(c.group)}" name="${xml(c.name)}">` +
          (c.reached ? '' : `<failure message="${xml(`${c.status}, goal ${c.status_goal}`)}">${xml(c.log_tail.join('\n'))}</failure>`) +
          '</testcase>',
      );
  const failures = r.refused ? 1 : r.containers.filter((c) => !c.reached).length;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="pvmigrate boot" tests="${cases.length}" failures="${failures}" time="${(r.elapsed_ms / 1000).toFixed(3)}">\n${cases.join('\n')}\n</testsuite>\n`;
}

/** Several JUnit documents as one: their <testsuite> elements under <testsuites>, in order. */
export function junitSuites(...docs: string[]): string {
  const suites = docs.map((d) => d.replace(/^<\?xml[^>]*\?>\s*/, '').trimEnd());
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n${suites.join('\n')}\n</testsuites>\n`;
}
