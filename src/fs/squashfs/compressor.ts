import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { deflateSync } from 'node:zlib';
import { EnvironmentError } from '../../errors.ts';

export type WriterCompression = 'gzip' | 'xz';

/**
 * Block compression for the writer. gzip is zlib level 9 (window 15), as mksquashfs's default, with memLevel 6:
 * Node bundles Chromium's zlib, whose level-9 output runs 1-3% larger than stock zlib's on binaries at the
 * default memLevel 8; 6 measured closest to stock (see the squashfs bench). xz has no
 * maintained pure-JS encoder, so it is delegated to the system `xz` tool (xz-utils) one block at a time
 * with the settings mksquashfs uses (LZMA2 preset 6, dictionary = block size, CRC32 check); xz output is
 * deterministic for a given xz-utils version.
 */
function xzArgs(dict: number): string[] {
  return ['--format=xz', '--check=crc32', `--lzma2=preset=6,dict=${dict}`, '--threads=1', '-c', '-q'];
}

/** Compress one block in this thread (metadata blocks are small and few). */
export function compressSync(kind: WriterCompression, data: Buffer, blockSize: number): Buffer {
  if (kind === 'gzip') return deflateSync(data, { level: 9, memLevel: 6 });
  const r = spawnSync('xz', xzArgs(blockSize), { input: data, maxBuffer: 4 * blockSize + 65536 });
  if (r.error) throw new EnvironmentError('missing-tool', 'xz compression needs the xz tool: apt-get install xz-utils (or use --comp gzip)');
  if (r.status !== 0) throw new EnvironmentError('xz-failed', `xz exited ${r.status}: ${r.stderr.toString().trim()}`);
  return r.stdout;
}

// Plain CommonJS evaluated in each worker, so workers need no TypeScript loader.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { deflateSync } = require('node:zlib');
const { spawnSync } = require('node:child_process');
const { kind, args, blockSize } = workerData;
parentPort.on('message', ({ id, data }) => {
  try {
    let out;
    if (kind === 'gzip') out = deflateSync(data, { level: 9, memLevel: 6 });
    else {
      const r = spawnSync('xz', args, { input: data, maxBuffer: 4 * blockSize + 65536 });
      if (r.error) throw r.error;
      if (r.status !== 0) throw new Error('xz exited ' + r.status + ': ' + r.stderr.toString().trim());
      out = r.stdout;
    }
    parentPort.postMessage({ id, out });
  } catch (e) {
    parentPort.postMessage({ id, error: String(e && e.message || e) });
  }
});
`;

interface Job {
  resolve(b: Buffer): void;
  reject(e: Error): void;
}

/**
 * A fixed pool of worker threads compressing data blocks. The result of each block depends only on its
 * bytes, so the image is the same whatever the number of workers or the order they finish in.
 */
export class CompressorPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly waiting: { id: number; data: Buffer }[] = [];
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor(kind: WriterCompression, blockSize: number, count: number) {
    for (let i = 0; i < Math.max(1, count); i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { kind, args: xzArgs(blockSize), blockSize } });
      w.on('message', (m: { id: number; out?: Uint8Array; error?: string }) => {
        const job = this.jobs.get(m.id)!;
        this.jobs.delete(m.id);
        if (m.error !== undefined) {
          const missing = kind === 'xz' && m.error.includes('ENOENT');
          job.reject(
            missing
              ? new EnvironmentError('missing-tool', 'xz compression needs the xz tool: apt-get install xz-utils (or use --comp gzip)')
              : kind === 'xz'
                ? new EnvironmentError('xz-failed', `xz compression failed: ${m.error}`)
                : new Error(m.error),
          );
        } else job.resolve(Buffer.from(m.out!.buffer, m.out!.byteOffset, m.out!.byteLength));
        this.dispatch(w);
      });
      w.on('error', (e) => {
        this.failure = e;
        for (const job of this.jobs.values()) job.reject(e);
        this.jobs.clear();
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  compress(data: Buffer): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const p = new Promise<Buffer>((resolve, reject) => this.jobs.set(id, { resolve, reject }));
    this.waiting.push({ id, data });
    const w = this.idle.pop();
    if (w) this.dispatch(w);
    return p;
  }

  private dispatch(w: Worker): void {
    const next = this.waiting.shift();
    if (!next) {
      this.idle.push(w);
      return;
    }
    w.postMessage(next);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
