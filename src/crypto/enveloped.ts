import { constants, createDecipheriv, createECDH, createHash, createPrivateKey, privateDecrypt, type KeyObject } from 'node:crypto';
import { EnvironmentError, InvalidInputError, PvError } from '../errors.ts';
import { DerError, TAG, children, ctx, encodeTlv, expectTag, oidString, type Tlv } from './der.ts';
import { OID, octetString, parseContentInfo } from './cms.ts';

/**
 * CMS envelopedData decryption (RFC 5652 §6) with one private key, as `rauc info --key` does for an
 * encrypted bundle CMS: RSA key transport (PKCS#1 v1.5 or OAEP) and EC key agreement
 * (dhSinglePass-stdDH-sha*kdf, X9.63 KDF, AES key wrap), trying every recipient of the key's type since a
 * bare private key does not say which recipient it is (as OpenSSL does without a certificate).
 */
const CONTENT_CIPHERS: Record<string, string> = {
  '2.16.840.1.101.3.4.1.2': 'aes-128-cbc',
  '2.16.840.1.101.3.4.1.22': 'aes-192-cbc',
  '2.16.840.1.101.3.4.1.42': 'aes-256-cbc',
};
const WRAP_CIPHERS: Record<string, { cipher: string; keyLen: number }> = {
  '2.16.840.1.101.3.4.1.5': { cipher: 'id-aes128-wrap', keyLen: 16 },
  '2.16.840.1.101.3.4.1.25': { cipher: 'id-aes192-wrap', keyLen: 24 },
  '2.16.840.1.101.3.4.1.45': { cipher: 'id-aes256-wrap', keyLen: 32 },
};
const KDF_HASH: Record<string, string> = {
  '1.3.133.16.840.63.0.2': 'sha1', // dhSinglePass-stdDH-sha1kdf-scheme
  '1.3.132.1.11.0': 'sha224',
  '1.3.132.1.11.1': 'sha256',
  '1.3.132.1.11.2': 'sha384',
  '1.3.132.1.11.3': 'sha512',
};
const RSA_PKCS1 = '1.2.840.113549.1.1.1';
const RSA_OAEP = '1.2.840.113549.1.1.7';
const AES_WRAP_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

export interface DecryptOptions {
  /** DER ContentInfo holding an envelopedData. */
  cms: Buffer;
  /** PEM private key (RSA or EC). */
  privateKeyPem: string;
  file?: string;
  keyFile?: string;
}

interface Recipient {
  kind: 'ktri' | 'kari';
  el: Tlv;
}

function algOid(el: Tlv | undefined, what: string): string {
  return oidString(children(expectTag(el, TAG.SEQUENCE, what))[0]!);
}

/** RSAES-PKCS1-v1_5 unpadding of a raw RSA block (Node refuses PKCS#1 v1.5 decryption since CVE-2023-46809). */
function pkcs1Unpad(em: Buffer): Buffer | undefined {
  if (em[0] !== 0 || em[1] !== 2) return undefined;
  const sep = em.indexOf(0, 2);
  if (sep < 10) return undefined; // at least 8 non-zero padding bytes
  return em.subarray(sep + 1);
}

function ktriKeys(el: Tlv, key: KeyObject): Buffer[] {
  const f = children(el);
  const alg = algOid(f[2], 'keyEncryptionAlgorithm');
  const ek = expectTag(f[3], TAG.OCTET_STRING, 'encryptedKey').value;
  try {
    if (alg === RSA_PKCS1) {
      const k = pkcs1Unpad(privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, ek));
      return k ? [k] : [];
    }
    if (alg === RSA_OAEP) return [privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING }, ek)];
  } catch {
    // Not this recipient (or not this key's size).
  }
  return [];
}

/** X9.63 KDF: Hash(Z ‖ counter ‖ SharedInfo) until keyLen bytes. */
function x963Kdf(hash: string, z: Buffer, sharedInfo: Buffer, keyLen: number): Buffer {
  const out: Buffer[] = [];
  for (let counter = 1, n = 0; n < keyLen; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    const d = createHash(hash).update(z).update(c).update(sharedInfo).digest();
    out.push(d);
    n += d.length;
  }
  return Buffer.concat(out).subarray(0, keyLen);
}

function kariKeys(el: Tlv, key: KeyObject): Buffer[] {
  const f = children(el);
  let i = 1;
  const originator = children(expectTag(f[i++], ctx(0), 'originator'))[0]!;
  if (originator.tag !== ctx(1)) return []; // originator given by certificate reference: not produced by OpenSSL's CMS_encrypt
  const point = expectTag(children(originator)[1], TAG.BIT_STRING, 'originator public key').value.subarray(1);
  let ukm: Buffer | undefined;
  if (f[i]?.tag === ctx(1)) ukm = expectTag(children(f[i++]!)[0], TAG.OCTET_STRING, 'ukm').value;
  const kea = children(expectTag(f[i++], TAG.SEQUENCE, 'keyEncryptionAlgorithm'));
  const kdfHash = KDF_HASH[oidString(kea[0]!)];
  const wrapAlg = expectTag(kea[1], TAG.SEQUENCE, 'key wrap algorithm');
  const wrap = WRAP_CIPHERS[oidString(children(wrapAlg)[0]!)];
  if (!kdfHash || !wrap) return [];
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const d = key.export({ format: 'jwk' }).d;
  if (!curve || !d) return [];
  let z: Buffer;
  try {
    const ecdh = createECDH(curve);
    ecdh.setPrivateKey(Buffer.from(d, 'base64url'));
    z = ecdh.computeSecret(point);
  } catch {
    return []; // the originator key is on another curve
  }
  // ECC-CMS-SharedInfo (RFC 5753 §7.2): keyInfo, entityUInfo [0] (ukm), suppPubInfo [2] (key length in bits).
  const bits = Buffer.alloc(4);
  bits.writeUInt32BE(wrap.keyLen * 8);
  const sharedInfo = encodeTlv(
    TAG.SEQUENCE,
    Buffer.concat([wrapAlg.raw, ukm ? encodeTlv(ctx(0), encodeTlv(TAG.OCTET_STRING, ukm)) : Buffer.alloc(0), encodeTlv(ctx(2), encodeTlv(TAG.OCTET_STRING, bits))]),
  );
  const kek = x963Kdf(kdfHash, z, sharedInfo, wrap.keyLen);
  const out: Buffer[] = [];
  for (const rek of children(expectTag(f[i], TAG.SEQUENCE, 'recipientEncryptedKeys'))) {
    const wrapped = expectTag(children(rek)[1], TAG.OCTET_STRING, 'encryptedKey').value;
    try {
      const dec = createDecipheriv(wrap.cipher, kek, AES_WRAP_IV);
      out.push(Buffer.concat([dec.update(wrapped), dec.final()]));
    } catch {
      // Integrity check of the key wrap failed: another recipient's key.
    }
  }
  return out;
}

/** Decrypt an envelopedData with a private key; returns the decrypted content (for RAUC: a signedData DER). */
export function decryptEnvelopedData(opts: DecryptOptions): { contentType: string; content: Buffer } {
  const { file } = opts;
  let key: KeyObject;
  try {
    key = createPrivateKey(opts.privateKeyPem);
  } catch (err) {
    throw new EnvironmentError('decrypt-key-invalid', `cannot read the decryption key: ${(err as Error).message}; pass a PEM private key (RSA or EC)`, { file: opts.keyFile, cause: err });
  }
  const keyType = key.asymmetricKeyType;
  if (keyType !== 'rsa' && keyType !== 'ec') {
    throw new EnvironmentError('decrypt-key-type', `decryption key is ${keyType}; only RSA and EC keys are supported`, { file: opts.keyFile });
  }
  let found: Attempt;
  try {
    found = tryRecipients(opts.cms, key, keyType, file);
  } catch (err) {
    if (err instanceof PvError) throw err;
    throw new InvalidInputError('cms-malformed', `encrypted CMS is malformed (${(err as Error).message}); the file is corrupt or truncated`, { file, cause: err });
  }
  if (found.opened) return found.opened;
  throw new InvalidInputError(
    'cms-not-recipient',
    `the decryption key opens none of the ${found.recipients} recipients (${found.mine} of its type ${keyType.toUpperCase()}) of the encrypted CMS; pass the private key the bundle was encrypted to`,
    { file },
  );
}

interface Attempt {
  opened?: { contentType: string; content: Buffer };
  recipients: number;
  mine: number;
}

/** Every recipient of the key's type, until one yields a content key that decrypts the content (DER errors propagate). */
function tryRecipients(cms: Buffer, key: KeyObject, keyType: 'rsa' | 'ec', file?: string): Attempt {
  const { contentType: outer, content } = parseContentInfo(cms);
  if (outer !== OID.envelopedData) throw new DerError(`content type ${outer} is not envelopedData`);
  const f = children(expectTag(content, TAG.SEQUENCE, 'EnvelopedData'));
  let i = 1;
  if (f[i]?.tag === ctx(0)) i++; // originatorInfo
  const recipients = children(expectTag(f[i++], TAG.SET, 'recipientInfos')).flatMap((r): Recipient[] => {
    if (r.tag === TAG.SEQUENCE) return [{ kind: 'ktri', el: r }];
    if (r.tag === ctx(1)) return [{ kind: 'kari', el: r }];
    return []; // kekri, pwri, ori: not used by RAUC
  });
  const eci = children(expectTag(f[i], TAG.SEQUENCE, 'encryptedContentInfo'));
  const contentType = oidString(eci[0]!);
  const encAlg = children(expectTag(eci[1], TAG.SEQUENCE, 'contentEncryptionAlgorithm'));
  const cipher = CONTENT_CIPHERS[oidString(encAlg[0]!)];
  if (!cipher) throw new InvalidInputError('cms-unsupported', `content encryption ${oidString(encAlg[0]!)} is not supported`, { file });
  const iv = expectTag(encAlg[1], TAG.OCTET_STRING, 'IV').value;
  const ecEl = eci[2];
  if (!ecEl) throw new DerError('no encrypted content');
  const ciphertext = octetString(ecEl);

  const mine = recipients.filter((r) => (keyType === 'rsa' ? r.kind === 'ktri' : r.kind === 'kari'));
  for (const r of mine) {
    for (const cek of r.kind === 'ktri' ? ktriKeys(r.el, key) : kariKeys(r.el, key)) {
      try {
        const dec = createDecipheriv(cipher, cek, iv);
        // A wrong key passes PKCS#1 v1.5 unpadding only by chance (~2^-16), and must then also give a key of the
        // cipher's exact length and valid CBC padding: a false success is out of reach.
        return { opened: { contentType, content: Buffer.concat([dec.update(ciphertext), dec.final()]) }, recipients: recipients.length, mine: mine.length };
      } catch {
        // Wrong content key: keep trying.
      }
    }
  }
  return { recipients: recipients.length, mine: mine.length };
}
