/**
 * AES decryption of artifacts (and of an encrypted sw-description) as swupdate does it: the key file
 * holds "<key hex> <iv hex>" (fscanf "%ms %ms"), the key length picks AES-128/192/256, an entry's `ivt`
 * overrides the file's IV, CBC uses PKCS#7 padding.
 */
import { createDecipheriv, type Decipher } from 'node:crypto';
import { EnvironmentError, InvalidInputError } from '../../src/errors.ts';
import { readNamedFile } from '../../src/util/named-file.ts';

export interface AesKey {
  key: Buffer;
  iv: Buffer;
}

const HEX = /^(?:[0-9A-Fa-f]{2})+$/;

export async function loadAesKeyFile(path: string): Promise<AesKey> {
  const text = (await readNamedFile(path)).toString('latin1');
  const [key, iv] = text.trim().split(/\s+/);
  if (!key || !iv) throw new EnvironmentError('aes-key-invalid', "AES key file is not in swupdate's format '<key hex> <iv hex>'", { file: path });
  if (!HEX.test(key) || ![32, 48, 64].includes(key.length)) {
    throw new EnvironmentError('aes-key-invalid', `AES key must be 32, 48 or 64 hex digits (AES-128/192/256), found ${key.length} characters`, { file: path });
  }
  if (!HEX.test(iv) || iv.length !== 32) throw new EnvironmentError('aes-key-invalid', `AES IV must be 32 hex digits, found ${iv.length} characters`, { file: path });
  return { key: Buffer.from(key, 'hex'), iv: Buffer.from(iv, 'hex') };
}

/**
 * A decipher for `cipher` ('aes-cbc', 'aes-cbc-256', 'aes-ctr-128' …) with the entry's own `aes-key` or
 * the key file's key, and the entry's `ivt` or the key file's IV.
 */
export function aesDecipher(cipher: string, keys: AesKey | undefined, entry: { ivt?: string; aesKey?: string; filename?: string }, file: string): Decipher {
  const m = /^aes-(cbc|ctr)(?:-(128|192|256))?$/.exec(cipher);
  if (!m) throw new InvalidInputError('cipher-unsupported', `encrypted = "${cipher}" for ${entry.filename ?? 'sw-description'} is not a cipher swupdate knows (aes-cbc, aes-cbc-128/192/256, aes-ctr-128/192/256)`, { file });
  let key = keys?.key;
  if (entry.aesKey !== undefined) {
    if (!HEX.test(entry.aesKey) || ![32, 48, 64].includes(entry.aesKey.length)) {
      throw new InvalidInputError('aes-key-invalid', `aes-key of ${entry.filename} must be 32, 48 or 64 hex digits`, { file });
    }
    key = Buffer.from(entry.aesKey, 'hex');
  }
  if (!key) throw new EnvironmentError('aes-key-missing', `${entry.filename} is encrypted: pass --aes-key FILE (swupdate key file "<key hex> <iv hex>")`, { file });
  const bits = key.length * 8;
  if (m[2] && Number(m[2]) !== bits) {
    throw new EnvironmentError('aes-key-invalid', `${entry.filename} is encrypted with ${cipher} but the key is AES-${bits}`);
  }
  let iv = keys?.iv;
  if (entry.ivt !== undefined) {
    if (!/^[0-9A-Fa-f]{32}$/.test(entry.ivt)) throw new InvalidInputError('ivt-invalid', `ivt of ${entry.filename} must be 32 hex digits ("Invalid ivt length" in swupdate)`, { file });
    iv = Buffer.from(entry.ivt, 'hex');
  }
  if (!iv) throw new InvalidInputError('ivt-missing', `${entry.filename} has its own aes-key but no ivt, and no --aes-key file gives a default IV`, { file });
  return createDecipheriv(`aes-${bits}-${m[1]}`, key, iv);
}
