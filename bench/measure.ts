import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/pvmigrate.js', import.meta.url));

export interface Measurement {
  seconds: number;
  maxRssMiB: number;
  stdout: string;
}

/** Wall time and peak RSS of one command, via GNU time (the same probe for us and for the peer tools). */
export function measure(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Measurement {
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, maxBuffer: 1 << 28 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const stderr = r.stderr.toString();
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${stderr.slice(-2000)}`);
  const lines = stderr.trim().split('\n');
  return { seconds, maxRssMiB: Number(lines[lines.length - 1]) / 1024, stdout: r.stdout.toString() };
}

/** Our CLI, measured the same way. */
export function measurePvmigrate(args: string[], options: { cwd?: string } = {}): Measurement {
  return measure(process.execPath, [bin, ...args], options);
}

/** One comparison line: ours vs the peer, with the ratio the target is stated in. */
export function report(label: string, ours: Measurement, peer: Measurement, peerName: string): void {
  const ratio = ours.seconds / peer.seconds;
  console.log(
    `${label}: pvmigrate ${ours.seconds.toFixed(2)} s (peak RSS ${ours.maxRssMiB.toFixed(0)} MiB) vs ${peerName} ${peer.seconds.toFixed(2)} s ` +
      `(peak RSS ${peer.maxRssMiB.toFixed(0)} MiB); time ratio ${ratio.toFixed(2)}×, speed ${(1 / ratio).toFixed(2)}× of ${peerName}`,
  );
}

/** The quickest of several runs: the machine is shared, so slower runs mostly measure the neighbours. */
export function fastest(runs: Measurement[]): Measurement {
  return runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
}

/** The median run, for interleaved comparisons where one lucky run should not decide. */
export function median(runs: Measurement[]): Measurement {
  return [...runs].sort((a, b) => a.seconds - b.seconds)[Math.floor(runs.length / 2)]!;
}

/**
 * A root-filesystem-like image of `mib` MiB: per MiB, half pseudo-random bytes (binaries) and half zeros
 * (free space), so compressors have real work (~2:1 with gzip). Deterministic for a given seed.
 */
export async function writeRootfsLikeImage(path: string, mib: number, seed: string): Promise<void> {
  const h = await open(path, 'w');
  try {
    let state = createHash('sha256').update(seed).digest();
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < mib; i++) {
      for (let o = 0; o < chunk.length / 2; o += 32) {
        state = createHash('sha256').update(state).digest();
        state.copy(chunk, o);
      }
      await h.write(chunk);
    }
  } finally {
    await h.close();
  }
}

/** Host directories that together make a mixed ~200 MB tree (binaries, libraries, scripts, text). */
const HOST_SOURCES = ['/usr/lib/gcc', '/usr/lib/python3.11', '/usr/lib/python3', '/usr/share/perl', '/usr/share/doc', '/usr/bin'];

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.toString();
}

/**
 * A copy of real host files in `tree` (made here), of about `targetBytes`: what a root filesystem holds, so
 * compressors and decoders work as hard as on a device's rootfs. Returns its size in bytes and its file count.
 */
export async function copyHostTree(tree: string, targetBytes: number): Promise<{ bytes: number; files: number; sources: string }> {
  await mkdir(tree);
  let bytes = 0;
  const used: string[] = [];
  for (const s of HOST_SOURCES) {
    if (bytes >= targetBytes) break;
    if (!(await access(s).then(() => true, () => false))) continue;
    run('cp', ['-a', s, join(tree, s.replaceAll('/', '_'))]);
    used.push(s);
    bytes = Number(run('du', ['-sb', tree]).split('\t')[0]);
  }
  const files = run('find', [tree, '-type', 'f']).split('\n').length - 1;
  return { bytes, files, sources: used.join(', ') };
}
