/**
 * SHA-256 and byte count of data as it streams past: one piece for every place that hashes while it copies
 * (atomic writes, exports, payload re-checks) or hashes what it reads (object and script verification).
 */
import { createHash, type Hash } from 'node:crypto';

/** Counts and hashes the chunks it is given; read `size` and `digest()` once they have all passed. */
export class Sha256Meter {
  size = 0;
  private readonly hash: Hash = createHash('sha256');

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.size += chunk.length;
  }

  /** Hex digest; call once, after the last chunk. */
  digest(): string {
    return this.hash.digest('hex');
  }

  /** The chunks passed through unchanged, each counted and hashed on the way. */
  async *through(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      this.update(chunk);
      yield chunk;
    }
  }
}

/** SHA-256 and size of everything `chunks` yields. */
export async function sha256Of(chunks: AsyncIterable<Buffer>): Promise<{ sha256: string; size: number }> {
  const m = new Sha256Meter();
  for await (const chunk of chunks) m.update(chunk);
  return { sha256: m.digest(), size: m.size };
}
