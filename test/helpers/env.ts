import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

/** The shared public corpus, read in place (never copied into the project). */
export const corpusDir = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));
export const corpusPresent = existsSync(join(corpusDir, 'SOURCES.md'));
export const corpusSkip = corpusPresent ? false : `shared corpus not found at ${corpusDir}`;

export function corpus(...parts: string[]): string {
  return join(corpusDir, ...parts);
}

export const isRoot = process.getuid?.() === 0;
const inCI = process.env.CI === 'true';

/**
 * Skip reason for a test that needs root (loop mounts, namespaces), or false to run it.
 * Under CI=true a privileged test must run: returning a reason there would hide a gap, so we throw.
 */
export function privileged(what: string): string | false {
  if (isRoot) return false;
  if (inCI) throw new Error(`CI=true but not root: the privileged test '${what}' cannot be skipped in CI`);
  return `needs root (${what}); run as root to include it`;
}

/** Skip reason when a peer tool is missing (false when present). Under CI a missing tool is a failure. */
export function needTool(tool: string): string | false {
  const found = spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
  if (found) return false;
  if (inCI) throw new Error(`CI=true but '${tool}' is not installed: .ci/run must install it`);
  return `${tool} not installed (apt-get install it, or run .ci/run)`;
}

/** A fresh temp directory removed when the test ends. */
export async function tempDir(t: TestContext, prefix = 'pvmigrate-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Run a command synchronously; throw with its stderr when it fails. */
export function sh(cmd: string, args: string[], options: { cwd?: string; input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): string {
  const input = typeof options.input === 'string' ? Buffer.from(options.input) : options.input;
  const r = spawnSync(cmd, args, { cwd: options.cwd, input, env: { ...process.env, ...options.env }, maxBuffer: 1 << 30, encoding: 'buffer' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}
