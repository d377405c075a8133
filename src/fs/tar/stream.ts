import type { Readable } from 'node:stream';
import { InvalidInputError } from '../../errors.ts';
import { expandContent, nextMember, padding, type ByteInput, type TarMember } from './members.ts';

export type { TarMember, TarMemberType } from './members.ts';

/** A member met while streaming; `body()` yields its content once, and only before the next member is asked for. */
export interface TarStreamEntry {
  member: TarMember;
  body(): AsyncIterable<Buffer>;
}

/** ByteInput over chunks arriving from a stream; holds at most one chunk beyond what the caller asked for. */
class StreamInput implements ByteInput {
  position = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private ended = false;
  private readonly it: AsyncIterator<Uint8Array>;

  constructor(
    readonly name: string,
    source: AsyncIterable<Uint8Array>,
  ) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    if (b.length) {
      this.pending.push(b);
      this.pendingBytes += b.length;
    }
    return true;
  }

  /** Up to `max` bytes (at least one), or null at the end of the input. */
  async readSome(max: number): Promise<Buffer | null> {
    while (this.pendingBytes === 0) if (!(await this.fill())) return null;
    const head = this.pending[0];
    const take = head.subarray(0, Math.min(max, head.length));
    if (take.length === head.length) this.pending.shift();
    else this.pending[0] = head.subarray(take.length);
    this.pendingBytes -= take.length;
    this.position += take.length;
    return take;
  }

  async readExact(n: number): Promise<Buffer | null> {
    while (this.pendingBytes < n) {
      if (!(await this.fill())) {
        if (this.pendingBytes === 0 && n > 0) return null;
        throw new InvalidInputError('truncated', `tar archive ends at offset ${this.position + this.pendingBytes}, inside a ${n}-byte record`, { file: this.name });
      }
    }
    const parts: Buffer[] = [];
    for (let left = n; left > 0; ) {
      const b = (await this.readSome(left))!;
      parts.push(b);
      left -= b.length;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
  }

  async skip(n: number): Promise<void> {
    for (let left = n; left > 0; ) {
      const b = await this.readSome(left);
      if (!b) throw new InvalidInputError('truncated', `tar archive ends at offset ${this.position} with ${left} bytes of a member missing`, { file: this.name });
      left -= b.length;
    }
  }

  /** The next `n` bytes as they arrive. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    for (let left = n; left > 0; ) {
      const b = await this.readSome(Math.min(left, 1 << 20));
      if (!b) throw new InvalidInputError('truncated', `tar archive ends at offset ${this.position} with ${left} bytes of a member missing`, { file: this.name });
      left -= b.length;
      yield b;
    }
  }
}

/**
 * The members of a tar read from a stream, in archive order (ustar, pax incl. xattrs, GNU long names,
 * GNU/pax sparse, base-256 numbers, checksums checked). Memory stays bounded: content is passed through
 * in the chunks the stream delivers. Unconsumed bodies are skipped. Ends at the end-of-archive marker.
 */
export async function* tarStream(source: Readable | AsyncIterable<Uint8Array>, name: string): AsyncGenerator<TarStreamEntry> {
  const input = new StreamInput(name, source as AsyncIterable<Uint8Array>);
  const globals = new Map<string, Buffer>();
  for (;;) {
    const member = await nextMember(input, globals);
    if (!member) return;
    const end = member.dataOffset + member.dataSize;
    let used = false;
    yield {
      member,
      body(): AsyncIterable<Buffer> {
        if (used) throw new Error(`body of tar member '${member.path}' read twice`);
        used = true;
        return expandContent(member, input.chunks(member.dataSize), name);
      },
    };
    // Whatever the consumer left unread (or all of it) is skipped, then the block padding.
    await input.skip(end - input.position);
    await input.skip(padding(member.dataSize));
  }
}
