import { createDecipheriv } from 'node:crypto';
import { InvalidInputError } from '../../src/errors.ts';
import { SliceSource, type RandomAccessSource } from '../../src/fs/source.ts';

/**
 * The plaintext of a RAUC crypt payload: dm-crypt `aes-cbc-plain64` with 4096-byte sectors, each sector
 * encrypted on its own with IV = LE64(sector × 8) ‖ 8 zero bytes (the IV counts 512-byte units).
 */
export const CRYPT_SECTOR = 4096;

export function sectorIv(sector: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64LE(BigInt(sector) * 8n, 0);
  return iv;
}

export class DecryptedSource extends SliceSource {
  constructor(
    private readonly ciphertext: RandomAccessSource,
    private readonly key: Buffer,
  ) {
    super(ciphertext, 0, ciphertext.size, ciphertext.name);
    if (key.length !== 32) throw new InvalidInputError('rauc-crypt', `crypt-key is ${key.length} bytes, AES-256 needs 32`, { file: ciphertext.name });
    if (ciphertext.size % CRYPT_SECTOR !== 0) {
      throw new InvalidInputError('rauc-crypt', `encrypted payload is ${ciphertext.size} bytes, not a multiple of the ${CRYPT_SECTOR}-byte sector`, { file: ciphertext.name });
    }
  }

  override async read(position: number, length: number): Promise<Buffer> {
    if (position < 0 || length < 0 || position + length > this.size) return super.read(position, length);
    if (length === 0) return Buffer.alloc(0);
    const first = Math.floor(position / CRYPT_SECTOR);
    const last = Math.floor((position + length - 1) / CRYPT_SECTOR);
    const enc = await this.ciphertext.read(first * CRYPT_SECTOR, (last - first + 1) * CRYPT_SECTOR);
    const out = Buffer.allocUnsafe(enc.length);
    for (let s = first; s <= last; s++) {
      const d = createDecipheriv('aes-256-cbc', this.key, sectorIv(s)).setAutoPadding(false);
      const at = (s - first) * CRYPT_SECTOR;
      const plain = d.update(enc.subarray(at, at + CRYPT_SECTOR));
      plain.copy(out, at);
      d.final();
    }
    return out.subarray(position - first * CRYPT_SECTOR, position - first * CRYPT_SECTOR + length);
  }
}
