/**
 * Streaming decoder for the LZ4 frame format (lz4 CLI, `compressed = "lz4"` since swupdate 2026.05),
 * built on the shared raw-block decoder. Blocks are at most 4 MiB, so memory stays bounded; frames may be
 * concatenated and skippable frames are skipped. Linked blocks (lz4 -BD) need the previous 64 KiB as a
 * dictionary, which the block decoder has no way to take: they are refused with a clear message.
 * The xxHash32 checksums are not checked: sha256 of the stored bytes already protects them.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { DecompressError, lz4BlockDecompress } from '../../src/fs/compression.ts';

const MAGIC = 0x184d2204;
const BLOCK_MAX = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

type State =
  | { at: 'magic' }
  | { at: 'header'; flg: number }
  | { at: 'block'; flg: number; blockMax: number }
  | { at: 'skip'; left: number };

export function lz4FrameDecoder(): Transform {
  let buf: Buffer = Buffer.alloc(0);
  let state: State = { at: 'magic' };
  let frames = 0;
  const fail = (why: string): never => {
    throw new DecompressError('lz4', why);
  };
  /** Parse as much as the buffered bytes allow; returns decoded blocks. */
  const step = (out: Buffer[]): boolean => {
    switch (state.at) {
      case 'magic': {
        if (buf.length < 4) return false;
        const magic = buf.readUInt32LE(0);
        if ((magic & 0xfffffff0) === 0x184d2a50) {
          if (buf.length < 8) return false;
          state = { at: 'skip', left: buf.readUInt32LE(4) };
          buf = buf.subarray(8);
          return true;
        }
        if (magic !== MAGIC) fail(`no LZ4 frame magic (found 0x${magic.toString(16)})`);
        if (buf.length < 5) return false;
        state = { at: 'header', flg: buf[4]! };
        return true;
      }
      case 'header': {
        const { flg } = state;
        if (flg >> 6 !== 1) fail(`unsupported LZ4 frame version ${flg >> 6}`);
        if (!(flg & 0x20)) fail('linked blocks (lz4 -BD) are not supported; recompress with independent blocks (the lz4 default)');
        const len = 4 + 1 + 1 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0) + 1;
        if (buf.length < len) return false;
        const blockMax = BLOCK_MAX[(buf[5]! >> 4) & 7]!;
        if (!blockMax) fail('invalid LZ4 block maximum size');
        buf = buf.subarray(len);
        state = { at: 'block', flg, blockMax };
        frames++;
        return true;
      }
      case 'block': {
        const { flg, blockMax } = state;
        if (buf.length < 4) return false;
        const word = buf.readUInt32LE(0);
        if (word === 0) {
          const end = 4 + (flg & 0x04 ? 4 : 0);
          if (buf.length < end) return false;
          buf = buf.subarray(end);
          state = { at: 'magic' };
          return true;
        }
        const size = word & 0x7fffffff;
        if (size > blockMax) fail(`block of ${size} bytes exceeds the frame's ${blockMax}-byte maximum`);
        const total = 4 + size + (flg & 0x10 ? 4 : 0);
        if (buf.length < total) return false;
        const data = buf.subarray(4, 4 + size);
        out.push(word & 0x80000000 ? Buffer.from(data) : lz4BlockDecompress(data, blockMax));
        buf = buf.subarray(total);
        return true;
      }
      case 'skip': {
        const n = Math.min(state.left, buf.length);
        buf = buf.subarray(n);
        state = { at: 'skip', left: state.left - n };
        if (state.left === 0) state = { at: 'magic' };
        return n > 0 || state.at === 'magic';
      }
    }
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      try {
        const out: Buffer[] = [];
        while (step(out));
        for (const o of out) this.push(o);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
    flush(cb: TransformCallback) {
      if (frames === 0 || state.at !== 'magic' || buf.length) cb(new DecompressError('lz4', 'truncated LZ4 frame'));
      else cb();
    },
  });
}
