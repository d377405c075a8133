import { InvalidInputError } from '../../src/errors.ts';
import type { RandomAccessSource } from '../../src/fs/source.ts';

/** RAUC's default `max-bundle-signature-size` (rauc/rauc:include/config_file.h). */
export const DEFAULT_MAX_SIGNATURE_SIZE = 64 * 1024;

const OID_SIGNED_DATA = Buffer.from('06092a864886f70d010702', 'hex');
const OID_ENVELOPED_DATA = Buffer.from('06092a864886f70d010703', 'hex');

export interface Trailer {
  /** The bytes before the CMS: squashfs (plain), squashfs + verity tree (verity) or ciphertext + tree (crypt). */
  payload: RandomAccessSource;
  cms: Buffer;
  cmsKind: 'signedData' | 'envelopedData';
}

/** Which CMS content type a DER ContentInfo announces, from its first bytes only. */
export function cmsContentType(der: Uint8Array): 'signedData' | 'envelopedData' | undefined {
  // ContentInfo ::= SEQUENCE { contentType OID, ... }: skip the outer tag and its length octets.
  if (der.length < 2 || der[0] !== 0x30) return undefined;
  const l = der[1]!;
  const p = l & 0x80 ? 2 + (l & 0x7f) : 2;
  const oid = Buffer.from(der.subarray(p, p + OID_SIGNED_DATA.length));
  if (oid.equals(OID_SIGNED_DATA)) return 'signedData';
  if (oid.equals(OID_ENVELOPED_DATA)) return 'envelopedData';
  return undefined;
}

const SQUASHFS_MAGIC = 0x73717368;

/**
 * True when the source ends like a RAUC bundle (a plausible size and a CMS ContentInfo where it points), or
 * is a squashfs followed by more than its 4 KiB padding and not ending in erased bytes: a plain/verity bundle
 * whose trailer is damaged, claimed here so that open() can say precisely what is wrong. A bare squashfs image,
 * or one in a zero- or 0xff-filled partition image, is not claimed.
 */
export async function looksLikeBundle(src: RandomAccessSource): Promise<boolean> {
  if (src.size < 8 + 16) return false;
  const len = (await src.read(src.size - 8, 8)).readBigUInt64BE(0);
  if (len >= 16n && len <= BigInt(src.size - 8)) {
    const head = await src.read(src.size - 8 - Number(len), 16);
    if (cmsContentType(head) !== undefined) return true;
  }
  // A squashfs written into a larger partition image ends in erased (0x00 or 0xff) bytes: not a bundle.
  if (len === 0n || len === 0xffffffffffffffffn || src.size < 96) return false;
  const sb = await src.read(0, 96);
  if (sb.readUInt32LE(0) !== SQUASHFS_MAGIC) return false;
  const bytesUsed = Number(sb.readBigUInt64LE(40));
  return src.size > Math.ceil(bytesUsed / 4096) * 4096;
}

/** Split a bundle into payload and CMS, enforcing the signature size limit as RAUC does. */
export async function readTrailer(src: RandomAccessSource, maxSignatureSize = DEFAULT_MAX_SIGNATURE_SIZE): Promise<Trailer> {
  if (src.size < 8) {
    throw new InvalidInputError('rauc-truncated', `only ${src.size} bytes: too short for a RAUC bundle (needs an 8-byte signature size trailer)`, { file: src.name });
  }
  const len = (await src.read(src.size - 8, 8)).readBigUInt64BE(0);
  if (len === 0n) {
    throw new InvalidInputError('rauc-no-signature', 'signature size in the trailer is 0: the bundle is unsigned or truncated', { file: src.name });
  }
  if (len > BigInt(src.size - 8)) {
    throw new InvalidInputError('rauc-trailer', `trailer announces a ${len}-byte signature but only ${src.size - 8} bytes precede it: the bundle is truncated or not a RAUC bundle`, { file: src.name });
  }
  if (len > BigInt(maxSignatureSize)) {
    throw new InvalidInputError('rauc-signature-too-large', `signature is ${len} bytes, above the limit of ${maxSignatureSize} bytes; raise it with --max-signature-size if the bundle has many recipients`, { file: src.name });
  }
  const cmsLen = Number(len);
  const cmsOff = src.size - 8 - cmsLen;
  const cms = await src.read(cmsOff, cmsLen);
  const cmsKind = cmsContentType(cms);
  if (!cmsKind) {
    throw new InvalidInputError('rauc-cms', `the ${cmsLen} bytes before the trailer are not a CMS signedData or envelopedData: the bundle is truncated or corrupt`, { file: src.name });
  }
  return { payload: src.slice(0, cmsOff, src.name), cms, cmsKind };
}
