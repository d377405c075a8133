/** Shared by the swupdate-*.test.ts files: build .swu images with the real tools and run swupdate -c on them. */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from './cli.ts';
import { sh } from './env.ts';

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** Write `files` (name → content) and sw-description into dir; return the sha256 of each file. */
export async function writeFiles(dir: string, files: Record<string, Buffer | string>): Promise<Record<string, string>> {
  const sums: Record<string, string> = {};
  for (const [name, data] of Object.entries(files)) {
    await writeFile(join(dir, name), data);
    sums[name] = sha256(typeof data === 'string' ? Buffer.from(data) : data);
  }
  return sums;
}

/** GNU cpio in the given member order (sw-description first, as a .swu needs). */
export function packSwu(dir: string, members: string[], out = 'image.swu', format: 'crc' | 'newc' = 'crc'): string {
  sh('sh', ['-c', `cpio -o -H ${format} > ${out} 2>/dev/null`], { cwd: dir, input: Buffer.from(members.join('\n') + '\n') });
  return join(dir, out);
}

/** A self-signed signing certificate with the given extended key usage. */
export function makeCert(dir: string, name: string, eku = 'emailProtection'): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  sh('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-subj', `/CN=${name}`, '-days', '30', '-addext', `extendedKeyUsage=${eku}`]);
  return { cert, key };
}

export function cmsSign(dir: string, signer: { cert: string; key: string }): void {
  sh('openssl', ['cms', '-sign', '-in', 'sw-description', '-signer', signer.cert, '-inkey', signer.key, '-outform', 'DER', '-nosmimecap', '-binary', '-out', 'sw-description.sig'], { cwd: dir });
}

export interface SwupdateVerdict {
  ok: boolean;
  /** Members swupdate read as required for the chosen board/collection. */
  required: string[];
  version?: string;
  log: string;
}

let runs = 0;
/** One swupdate at a time per test process: under load, parallel runs lose their log (observed). */
let queue: Promise<unknown> = Promise.resolve();

function runSwupdate(dir: string, swu: string, args: string[]): Promise<string> {
  const tmp = join(dir, `swupdate-tmp-${runs++}`);
  return mkdir(tmp, { recursive: true }).then(
    () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn('swupdate', ['-c', '-l', '5', '-i', swu, ...args], { env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.on('error', reject);
        child.on('close', () => {
          clearTimeout(timer);
          resolve(out);
        });
      }),
  );
}

/**
 * swupdate -c (check only, handlers replaced by dummy) with its own TMPDIR. Judged by its log ("SWUPDATE
 * successful" or an ERROR line), because its exit status in check mode is unreliable (reference §7); a
 * log with neither is incomplete and the run is repeated.
 */
export function swupdateCheck(dir: string, swu: string, args: string[]): Promise<SwupdateVerdict> {
  const run = queue.then(async () => {
    let log = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      log = await runSwupdate(dir, swu, args);
      if (log.includes('SWUPDATE successful') || log.includes('[ERROR]')) break;
    }
    const required = [...log.matchAll(/filename (\S+)\n.*size \d+ required/g)].map((m) => m[1]!);
    return { ok: log.includes('SWUPDATE successful'), required: required.sort(), version: /Version (\S+)/.exec(log)?.[1], log };
  });
  queue = run.catch(() => {});
  return run;
}

export interface Inspect {
  code: number;
  doc: any;
  stderr: string;
}

export async function inspect(swu: string, args: string[] = []): Promise<Inspect> {
  const r = await runCli(['inspect', swu, '--json', ...args]);
  return { code: r.code, doc: r.code === 0 ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
}

export const names = (doc: any): string[] => [...new Set<string>(doc.payloads.map((p: { name: string }) => p.name))].sort();
