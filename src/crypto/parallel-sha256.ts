/**
 * SHA-256 on a worker thread, so hashing a large payload runs beside what else reads it (a crc byte sum,
 * decoders, dm-verity block checks) instead of after them. Flow-controlled: at most MAX_INFLIGHT bytes are
 * queued to the worker, so a slow worker never lets memory grow.
 */
import { createHash } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { Worker } from 'node:worker_threads';

const MAX_INFLIGHT = 32 << 20;
/** Below this, a worker's start-up costs more than it saves. */
const PARALLEL_THRESHOLD = 16 << 20;

// Plain CommonJS evaluated in the worker: no loader needed for TypeScript.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha256');
parentPort.on('message', (m) => {
  if (m === null) parentPort.postMessage({ digest: hash.digest('hex') });
  else { hash.update(m); parentPort.postMessage({ done: m.byteLength }); }
});`;

export interface Sha256 {
  update(chunk: Buffer): Promise<void> | void;
  digest(): Promise<string>;
}

export class WorkerSha256 implements Sha256 {
  private readonly worker = new Worker(WORKER, { eval: true });
  private inflight = 0;
  private waiting: (() => void) | undefined;
  private result: { resolve(hex: string): void; reject(e: Error): void } | undefined;
  private failed: Error | undefined;

  constructor() {
    this.worker.on('message', (m: { done?: number; digest?: string }) => {
      if (m.digest !== undefined) this.result?.resolve(m.digest);
      else {
        this.inflight -= m.done!;
        if (this.inflight <= MAX_INFLIGHT) this.release();
      }
    });
    // A worker that dies must fail the hash, never leave a caller waiting.
    const fail = (e: Error) => {
      this.failed ??= e;
      this.release();
      this.result?.reject(this.failed);
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`sha256 worker exited (code ${code}) before the digest`)));
  }

  private release(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  async update(chunk: Buffer): Promise<void> {
    if (this.failed) throw this.failed;
    const copy = new Uint8Array(chunk); // the caller keeps using its chunk; this copy moves to the worker
    this.inflight += copy.byteLength;
    this.worker.postMessage(copy, [copy.buffer]);
    if (this.inflight > MAX_INFLIGHT) await new Promise<void>((r) => (this.waiting = r));
    if (this.failed) throw this.failed;
  }

  async digest(): Promise<string> {
    if (this.failed) throw this.failed;
    const hex = await new Promise<string>((resolve, reject) => {
      this.result = { resolve, reject };
      this.worker.postMessage(null);
    });
    await this.worker.terminate();
    return hex;
  }

  dispose(): void {
    void this.worker.terminate();
  }
}

class InlineSha256 implements Sha256 {
  private readonly hash = createHash('sha256');
  update(chunk: Buffer): void {
    this.hash.update(chunk);
  }
  async digest(): Promise<string> {
    return this.hash.digest('hex');
  }
}

/**
 * A worker-backed hash for large inputs when a core is likely idle, an inline one otherwise: on a saturated
 * machine the copies and hand-offs cost more than the parallelism gains (measured: up to 2× slower).
 */
export function sha256For(expectedBytes: number): Sha256 & { dispose?(): void } {
  const cores = availableParallelism();
  const idleCore = cores >= 2 && loadavg()[0]! < cores - 0.5;
  return expectedBytes >= PARALLEL_THRESHOLD && idleCore ? new WorkerSha256() : new InlineSha256();
}
