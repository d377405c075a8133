import type { RandomAccessSource } from '../source.ts';

const CHUNK = 64 * 1024;

/**
 * Small reads of filesystem metadata (inodes, descriptors, FAT entries, index blocks) through an LRU of
 * 64 KiB chunks: neighbouring inodes share one read, and memory stays at `maxChunks` × 64 KiB.
 */
export class CachedReader {
  private readonly chunks = new Map<number, Promise<Buffer>>();

  constructor(
    readonly src: RandomAccessSource,
    private readonly maxChunks = 128,
  ) {}

  private chunk(index: number): Promise<Buffer> {
    const hit = this.chunks.get(index);
    if (hit) {
      // Re-insert so the Map's order stays least-recently-used first.
      this.chunks.delete(index);
      this.chunks.set(index, hit);
      return hit;
    }
    const pos = index * CHUNK;
    const p = this.src.read(pos, Math.min(CHUNK, this.src.size - pos));
    this.chunks.set(index, p);
    p.catch(() => this.chunks.delete(index));
    if (this.chunks.size > this.maxChunks) this.chunks.delete(this.chunks.keys().next().value as number);
    return p;
  }

  /** Exactly `length` bytes at `position` (a truncated-input error past the end, as the source gives). */
  async read(position: number, length: number): Promise<Buffer> {
    if (position < 0 || length < 0 || position + length > this.src.size) return this.src.read(position, length);
    const first = Math.floor(position / CHUNK);
    const last = Math.floor((position + length - 1) / CHUNK);
    if (length === 0) return Buffer.alloc(0);
    if (first === last) {
      const c = await this.chunk(first);
      const at = position - first * CHUNK;
      return c.subarray(at, at + length);
    }
    if (last - first > 16) return this.src.read(position, length);
    const parts: Buffer[] = [];
    for (let i = first; i <= last; i++) parts.push(await this.chunk(i));
    const whole = Buffer.concat(parts);
    const at = position - first * CHUNK;
    return whole.subarray(at, at + length);
  }
}
