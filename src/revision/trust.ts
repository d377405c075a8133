/**
 * Keys and certificates for pvs@2: PEM loading, JWK conversion as go-jose embeds it, and X.509 chain
 * validation against a truststore (what Pantavisor does with mbedtls_x509_crt_verify).
 */
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { EnvironmentError, InvalidInputError } from '../errors.ts';
import { readNamedFile } from '../util/named-file.ts';

export type PvsAlg = 'RS256' | 'ES256' | 'ES384' | 'ES512';

const CURVE_ALG: Record<string, PvsAlg> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };
const NAMED_CURVE: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** The JWS algorithm a key signs with (pvr picks it from the key the same way). */
export function algForKey(key: KeyObject, file?: string): PvsAlg {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ec') {
    const curve = NAMED_CURVE[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (curve) return CURVE_ALG[curve]!;
  }
  throw new InvalidInputError('key-type', `unsupported key (${key.asymmetricKeyType} ${key.asymmetricKeyDetails?.namedCurve ?? ''}); pvs@2 needs RSA or EC P-256/P-384/P-521`, { file });
}

/** Whether `key` can check signatures made with `alg`. */
export function keyFitsAlg(key: KeyObject, alg: string): boolean {
  try {
    return algForKey(key) === alg;
  } catch {
    return false;
  }
}

/** The public JWK as go-jose embeds it: `{kty,n,e}` or `{kty,crv,x,y}`, in that member order. */
export function publicJwk(key: KeyObject): Record<string, string> {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const j = pub.export({ format: 'jwk' }) as Record<string, string>;
  if (j.kty === 'RSA') return { kty: 'RSA', n: j.n!, e: j.e! };
  return { kty: 'EC', crv: j.crv!, x: j.x!, y: j.y! };
}

export function sameKey(a: KeyObject, b: KeyObject): boolean {
  const der = (k: KeyObject): Buffer => (k.type === 'private' ? createPublicKey(k) : k).export({ type: 'spki', format: 'der' });
  return der(a).equals(der(b));
}

async function readPem(file: string, what: string): Promise<string> {
  return (await readNamedFile(file, what)).toString('utf8');
}

export async function loadPrivateKey(file: string): Promise<KeyObject> {
  const pem = await readPem(file, 'the signing key');
  try {
    const key = createPrivateKey(pem);
    algForKey(key, file);
    return key;
  } catch (err) {
    if (err instanceof InvalidInputError) throw new EnvironmentError(err.code, err.message, { file });
    throw new EnvironmentError('key', 'no usable PEM private key (PKCS#1, PKCS#8 or SEC1) in this file', { file });
  }
}

/** A public key from a PEM public key or certificate. */
export async function loadPublicKey(file: string): Promise<KeyObject> {
  const pem = await readPem(file, 'the public key');
  try {
    return createPublicKey(pem);
  } catch {
    throw new EnvironmentError('key', 'no PEM public key or certificate in this file', { file });
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

export function parseCertificates(pem: string, file?: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch {
    throw new EnvironmentError('certificate', 'a CERTIFICATE block does not parse as X.509', { file });
  }
}

export async function loadCertificates(file: string, what: string): Promise<X509Certificate[]> {
  const certs = parseCertificates(await readPem(file, what), file);
  if (certs.length === 0) throw new EnvironmentError('certificate', `no PEM certificate in ${what}`, { file });
  return certs;
}

/**
 * Validate `chain` (leaf first, as in x5c) up to a certificate of `anchors`: each link's signature and
 * issuer name, CA flag on issuers, validity at `at` for every certificate used. Returns why it fails, or
 * undefined when the chain anchors.
 */
export function chainProblem(chain: X509Certificate[], anchors: X509Certificate[], at: Date = new Date()): string | undefined {
  if (chain.length === 0) return 'no certificate';
  const expired = (c: X509Certificate): string | undefined => {
    if (at < new Date(c.validFrom)) return `certificate '${c.subject.replace(/\n/g, ', ')}' is not valid before ${c.validFrom}`;
    if (at > new Date(c.validTo)) return `certificate '${c.subject.replace(/\n/g, ', ')}' expired on ${c.validTo}`;
    return undefined;
  };
  let cur = chain[0]!;
  const pool = chain.slice(1);
  for (let depth = 0; depth < 10; depth++) {
    const bad = expired(cur);
    if (bad) return bad;
    if (anchors.some((a) => a.fingerprint256 === cur.fingerprint256)) return undefined;
    const anchor = anchors.find((a) => a.ca && cur.checkIssued(a) && cur.verify(a.publicKey));
    if (anchor) return expired(anchor);
    const next = pool.find((c) => c.ca && cur.checkIssued(c) && cur.verify(c.publicKey));
    if (!next) {
      return `no issuer for '${cur.issuer.replace(/\n/g, ', ')}' in the x5c chain or the truststore (the chain does not anchor)`;
    }
    cur = next;
  }
  return 'certificate chain longer than 10';
}
