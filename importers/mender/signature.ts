import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { EnvironmentError } from '../../src/errors.ts';
import { readNamedFile } from '../../src/util/named-file.ts';

/**
 * `manifest.sig`: base64 of a signature over the raw `manifest` bytes — RSASSA-PKCS1-v1_5 with SHA-256, or
 * ECDSA P-256 with SHA-256 as raw r‖s (64 bytes, what mender-artifact writes) or ASN.1 DER (70–72 bytes,
 * what HSM/KMS signers give).
 */
export async function loadVerificationKey(path: string): Promise<KeyObject> {
  const pem = await readNamedFile(path);
  let key: KeyObject;
  try {
    // A private key works too: its public half is derived.
    key = createPublicKey(pem);
  } catch (err) {
    throw new EnvironmentError('key', `not a PEM public key: ${(err as Error).message}; give --key the PKIX public key (openssl pkey -pubout)`, { file: path, cause: err });
  }
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new EnvironmentError('key', `ECDSA key on curve ${key.asymmetricKeyDetails?.namedCurve}; Mender artifacts are signed with P-256 only`, { file: path });
  }
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ec') {
    throw new EnvironmentError('key', `${key.asymmetricKeyType} key; Mender artifacts are signed with RSA or ECDSA P-256`, { file: path });
  }
  return key;
}

/** null when the signature verifies, else the reason it does not. */
export function checkManifestSignature(manifest: Buffer, sigText: Buffer, key: KeyObject): string | null {
  const b64 = sigText.toString('latin1').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return 'manifest.sig is not base64';
  const sig = Buffer.from(b64, 'base64');
  let ok: boolean;
  if (key.asymmetricKeyType === 'rsa') {
    ok = verify('sha256', manifest, key, sig);
  } else {
    let dsaEncoding: 'ieee-p1363' | 'der';
    if (sig.length === 64) dsaEncoding = 'ieee-p1363';
    else if (sig.length >= 70 && sig.length <= 72) dsaEncoding = 'der';
    else return `manifest.sig holds a ${sig.length}-byte ECDSA signature; expected 64 (r‖s) or 70–72 (DER)`;
    try {
      ok = verify('sha256', manifest, { key, dsaEncoding }, sig);
    } catch {
      ok = false;
    }
  }
  return ok ? null : `manifest.sig does not verify with the given ${key.asymmetricKeyType === 'rsa' ? 'RSA' : 'ECDSA'} key (wrong key, or manifest tampered)`;
}
