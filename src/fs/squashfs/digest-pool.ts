/**
 * SHA-256 of squashfs files on worker threads: each worker reads a file's blocks straight from the image
 * file, inflates and hashes them, and only the digest crosses back. That spreads the decompression over the
 * cores the way unsquashfs's -processors does; handing decoded blocks between threads instead costs more in
 * copies and garbage than it saves (measured in bench/squashfs.bench.ts). zlib images only: node's zlib is
 * what a worker can run without our TypeScript modules.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { EnvironmentError, fromSystemError } from '../../errors.ts';
import { DATA_UNCOMPRESSED } from './format.ts';
import { CorruptImage } from './metadata.ts';

/** A regular file's blocks as absolute positions in `path`; the checks mirror the reader's own. */
export interface DigestJob {
  path: string;
  /** The image file's identity: a worker that opens `path` and finds another file refuses it. */
  dev: number;
  ino: number;
  /** Where the image starts in `path` (it may sit inside an artifact); error messages count from here. */
  base: number;
  /** Absolute end of the image's used bytes: no block may reach past it. */
  end: number;
  blockSize: number;
  size: number;
  /** Absolute position of the first data block, and each block's size word. */
  start: number;
  words: number[];
  /** The tail in a fragment block: that block's absolute position and size word, and the tail's offset in it. */
  fragment?: { pos: number; word: number; offset: number };
}

// Plain CommonJS evaluated in the worker (no TypeScript loader there). Messages: a DigestJob with an id →
// { id, sha256 } or { id, error }. The last fragment block stays cached: files in walk order share it.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const { closeSync, fstatSync, openSync, readSync } = require('node:fs');
const { inflateSync } = require('node:zlib');
const { createHash } = require('node:crypto');
const UNCOMPRESSED = ${DATA_UNCOMPRESSED};
const fds = new Map();
let fragment = { key: '', data: null };
let zeros = Buffer.alloc(0);
function read(fd, pos, len) {
  const b = Buffer.allocUnsafe(len);
  for (let done = 0; done < len; ) {
    const n = readSync(fd, b, done, len - done, pos + done);
    if (n === 0) throw new Error('the image file shrank while reading at offset ' + (pos + done));
    done += n;
  }
  return b;
}
function block(j, fd, pos, word, expected, exact) {
  const size = word & (UNCOMPRESSED - 1);
  const at = pos - j.base;
  if (size === 0) {
    if (zeros.length < expected) zeros = Buffer.alloc(j.blockSize);
    return zeros.subarray(0, expected);
  }
  if (size > j.blockSize || pos + size > j.end) throw new Error('data block at ' + at + ' (' + size + ' bytes) lies outside the image');
  const raw = read(fd, pos, size);
  let out = raw;
  if (!(word & UNCOMPRESSED)) {
    try { out = inflateSync(raw, { maxOutputLength: j.blockSize, chunkSize: j.blockSize }); }
    catch (e) { throw new Error('data block at ' + at + ': ' + e.message); }
  }
  if (exact ? out.length !== expected : out.length > expected) throw new Error('data block at ' + at + ' holds ' + out.length + ' bytes, expected ' + expected);
  return out;
}
parentPort.on('message', (j) => {
  try {
    const file = j.path + ':' + j.dev + ':' + j.ino;
    let fd = fds.get(file);
    if (fd === undefined) {
      fd = openSync(j.path, 'r');
      const st = fstatSync(fd);
      if (st.dev !== j.dev || st.ino !== j.ino) {
        closeSync(fd);
        throw Object.assign(new Error('the image file was replaced while it was being read'), { code: 'ESTALE' });
      }
      fds.set(file, fd);
    }
    const h = createHash('sha256');
    let pos = j.start;
    for (let i = 0; i < j.words.length; i++) {
      h.update(block(j, fd, pos, j.words[i], Math.min(j.blockSize, j.size - i * j.blockSize), true));
      pos += j.words[i] & (UNCOMPRESSED - 1);
    }
    const tail = j.size - j.words.length * j.blockSize;
    if (j.fragment && tail > 0) {
      const key = j.path + ':' + j.fragment.pos;
      if (fragment.key !== key) fragment = { key: '', data: block(j, fd, j.fragment.pos, j.fragment.word, j.blockSize, false) };
      fragment.key = key;
      if (j.fragment.offset + tail > fragment.data.length) throw new Error('a fragment block is shorter than the file tail it holds');
      h.update(fragment.data.subarray(j.fragment.offset, j.fragment.offset + tail));
    }
    parentPort.postMessage({ id: j.id, sha256: h.digest('hex') });
  } catch (e) {
    parentPort.postMessage({ id: j.id, error: e.message, code: e.code });
  }
});`;

/** A digest asked for after the image was closed. */
export function closedImage(file: string): EnvironmentError {
  return new EnvironmentError('closed', 'the squashfs image was closed before its files were hashed', { file });
}

interface Lane {
  worker: Worker;
  inflight: number;
  /** Bytes of the files queued here: a new file goes to the lane with the least. */
  queued: number;
  /** Fragment block of the job last sent here, so files sharing it go to the worker that has it cached. */
  lastFragment: number;
}

export class DigestPool {
  private readonly lanes: Lane[];
  private readonly waiting = new Map<number, { size: number; path: string; resolve(hex: string): void; reject(e: Error): void }>();
  private nextId = 0;
  private failed: Error | undefined;

  /** `file` is what errors name (the image, as the reader knows it). */
  constructor(
    private readonly file: string,
    workers = Math.min(4, availableParallelism()),
  ) {
    this.lanes = Array.from({ length: Math.max(1, workers) }, () => {
      const lane: Lane = { worker: new Worker(WORKER, { eval: true }), inflight: 0, queued: 0, lastFragment: -1 };
      lane.worker.on('message', (m: { id: number; sha256?: string; error?: string; code?: string }) => {
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        lane.queued -= w?.size ?? 0;
        if (--lane.inflight === 0) lane.worker.unref();
        if (m.error === undefined) w?.resolve(m.sha256!);
        // A system error (the image file gone, unreadable) is the environment's; anything else is the image's.
        else if (m.code && /^E[A-Z0-9]+$/.test(m.code)) w?.reject(fromSystemError(Object.assign(new Error(m.error), { code: m.code }), w.path));
        else w?.reject(new CorruptImage(m.error));
      });
      // A worker that dies (out of memory, killed) fails everything still waiting, never leaves a caller
      // hanging; that is the machine's trouble, not the image's.
      const fail = (e: Error) => {
        this.failed ??= new EnvironmentError('digest-worker', `a squashfs hashing thread stopped: ${e.message}; check free memory and run again`, { file: this.file, cause: e });
        for (const w of this.waiting.values()) w.reject(this.failed);
        this.waiting.clear();
      };
      lane.worker.on('error', fail);
      lane.worker.on('exit', (code) => fail(new Error(`squashfs digest worker exited (code ${code})`)));
      lane.worker.unref();
      return lane;
    });
  }

  digest(job: DigestJob): Promise<string> {
    if (this.failed) return Promise.reject(this.failed);
    const frag = job.fragment?.pos ?? -1;
    let lane = frag >= 0 ? this.lanes.find((l) => l.lastFragment === frag) : undefined;
    lane ??= this.lanes.reduce((a, b) => (b.queued < a.queued ? b : a));
    lane.queued += job.size;
    if (frag >= 0) lane.lastFragment = frag;
    // Referenced only while it has work, so an idle pool never keeps the process alive.
    if (lane.inflight++ === 0) lane.worker.ref();
    const id = this.nextId++;
    return new Promise<string>((resolve, reject) => {
      this.waiting.set(id, { size: job.size, path: job.path, resolve, reject });
      lane.worker.postMessage({ id, ...job });
    });
  }

  async close(): Promise<void> {
    this.failed ??= closedImage(this.file);
    await Promise.all(this.lanes.map((l) => l.worker.terminate()));
  }
}
