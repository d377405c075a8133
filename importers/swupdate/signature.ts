/**
 * sw-description.sig: which signing the image was built with is a build-time choice nothing in the .swu
 * names, so it is sniffed from the bytes (CMS DER signedData, OpenPGP packet or armor, else a raw RSA
 * signature) and verified over the sw-description plaintext with the trust material given.
 */
import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseContentInfo, OID, verifyCmsSignedData } from '../../src/crypto/cms.ts';
import { EnvironmentError, InvalidInputError, UsageError } from '../../src/errors.ts';
import { readNamedFile } from '../../src/util/named-file.ts';
import type { TrustOptions } from '../types.ts';

export type SignatureType = 'cms' | 'rsa' | 'pss' | 'gpg';

export interface SignatureVerdict {
  type: SignatureType;
  /** true = verified; null = not checked (--no-verify). A failure throws instead. */
  verified: boolean | null;
  /** CMS: the signer's subject. */
  signer?: string;
}

/**
 * One OpenPGP signature packet (tag 2, old or new format header) filling the whole file, with a known
 * packet version: a raw RSA signature starts with such a byte by chance (about 2 %), never with all of it.
 */
function isOpenPgpSignature(sig: Buffer): boolean {
  if (sig.length < 8) return false;
  const tag = sig[0]!;
  let len: number;
  let hdr: number;
  if ((tag & 0xc0) === 0x80) {
    if (((tag >> 2) & 0x0f) !== 2) return false;
    const lengthType = tag & 3;
    if (lengthType === 0) [len, hdr] = [sig[1]!, 2];
    else if (lengthType === 1) [len, hdr] = [sig.readUInt16BE(1), 3];
    else if (lengthType === 2) [len, hdr] = [sig.readUInt32BE(1), 5];
    else return false;
  } else if (tag === 0xc2) {
    const o = sig[1]!;
    if (o < 192) [len, hdr] = [o, 2];
    else if (o < 224) [len, hdr] = [((o - 192) << 8) + sig[2]! + 192, 3];
    else if (o === 255) [len, hdr] = [sig.readUInt32BE(2), 6];
    else return false;
  } else return false;
  return hdr + len === sig.length && [3, 4, 5, 6].includes(sig[hdr]!);
}

export function sniffSignature(sig: Buffer): 'cms' | 'gpg' | 'raw' {
  if (sig.subarray(0, 40).toString('latin1').includes('-----BEGIN PGP')) return 'gpg';
  if (isOpenPgpSignature(sig)) return 'gpg';
  if (sig[0] === 0x30) {
    try {
      if (parseContentInfo(sig).contentType === OID.signedData) return 'cms';
    } catch {
      // not DER: a raw RSA signature may start with 0x30 too
    }
  }
  return 'raw';
}

const PURPOSES: Record<string, 'smimesign' | 'codesign'> = { emailProtection: 'smimesign', codeSigning: 'codesign' };

async function readTrustFile(path: string): Promise<string> {
  return (await readNamedFile(path)).toString('utf8');
}

/** Verify `sig` over `content` (the sw-description plaintext). Throws with a precise message when it does not verify. */
export async function verifySignature(sig: Buffer, content: Buffer, trust: TrustOptions, file: string): Promise<SignatureVerdict> {
  const kind = sniffSignature(sig);
  if (kind === 'gpg') {
    if (trust.noVerify) return { type: 'gpg', verified: null };
    throw new EnvironmentError('gpg-unsupported', 'sw-description.sig is an OpenPGP (GPG) signature, which pvmigrate cannot verify; check it with swupdate or gpg --verify, then read the image with --no-verify', { file });
  }
  if (trust.noVerify) return { type: kind === 'cms' ? 'cms' : 'rsa', verified: null };
  if (kind === 'cms') {
    if (!trust.ca) throw new EnvironmentError('trust-missing', 'sw-description is signed with CMS: pass --ca PEM (the CA certificates swupdate gets with -k) or --no-verify', { file });
    const purposeName = trust.certPurpose ?? 'emailProtection';
    const purpose = PURPOSES[purposeName];
    if (!purpose) throw new UsageError(`--cert-purpose must be emailProtection or codeSigning, not '${purposeName}'`);
    try {
      const r = await verifyCmsSignedData({ cms: sig, detachedContent: Readable.from([content]), trustAnchors: await readTrustFile(trust.ca), purpose, file });
      return { type: 'cms', verified: true, signer: r.signer.subject };
    } catch (err) {
      // The shared CMS module speaks RAUC's flag names; say swupdate's.
      if (err instanceof InvalidInputError && err.code === 'cert-purpose') {
        throw new InvalidInputError(err.code, err.message.replace(/--check-purpose codesign \(or any\)/, '--cert-purpose codeSigning'), { file });
      }
      if (err instanceof InvalidInputError && (err.code === 'cms-content-mismatch' || err.code === 'cms-signature')) {
        throw new InvalidInputError('signature-invalid', `sw-description does not match its CMS signature (${err.message}): the description was altered or signed with another key`, { file });
      }
      throw err;
    }
  }
  if (!trust.pubkey) {
    throw new EnvironmentError('trust-missing', `sw-description is signed with a raw ${sig.length * 8}-bit RSA signature: pass --pubkey PEM (the public key swupdate gets with -k) or --no-verify`, { file });
  }
  let key: KeyObject;
  try {
    key = createPublicKey(await readTrustFile(trust.pubkey));
  } catch (err) {
    if (err instanceof EnvironmentError) throw err;
    throw new EnvironmentError('pubkey-invalid', `--pubkey ${trust.pubkey} is not a PEM public key: ${(err as Error).message}`, { file: trust.pubkey });
  }
  const modulusBytes = ((key.asymmetricKeyDetails?.modulusLength ?? 0) + 7) >> 3;
  if (key.asymmetricKeyType !== 'rsa' || sig.length !== modulusBytes) {
    throw new InvalidInputError('signature-invalid', `sw-description.sig is ${sig.length} bytes, not an RSA signature for this ${key.asymmetricKeyType ?? 'unknown'} key (${modulusBytes} bytes): wrong --pubkey, or the signature is corrupt`, { file });
  }
  if (verify('sha256', content, { key, padding: constants.RSA_PKCS1_PADDING }, sig)) return { type: 'rsa', verified: true };
  if (verify('sha256', content, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig)) return { type: 'pss', verified: true };
  throw new InvalidInputError('signature-invalid', 'sw-description does not verify against sw-description.sig with --pubkey (RSA PKCS#1 v1.5 and PSS, SHA-256 tried): the description was altered or signed with another key', { file });
}
