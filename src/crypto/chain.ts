import { InvalidInputError } from '../errors.ts';
import { EKU, KU, type Certificate } from './x509.ts';

/**
 * Certificate path building and checking as OpenSSL's X509_verify_cert does for CMS_verify: from the
 * signer up through the certificates carried in the CMS to a self-signed trust anchor of the keyring,
 * with validity times, CA constraints and the purpose checks of v3_purp.c.
 */
export type CertPurpose = 'smimesign' | 'codesign' | 'any';

export const CERT_PURPOSES: readonly CertPurpose[] = ['smimesign', 'codesign', 'any'];

export interface ChainOptions {
  anchors: Certificate[];
  /** Certificates the signature carries (intermediates). */
  untrusted: Certificate[];
  purpose: CertPurpose;
  /** Check validity periods at this time; false skips the check (rauc --no-check-time). */
  time: Date | false;
  file?: string;
}

const MAX_DEPTH = 16;

function isSelfSigned(c: Certificate): boolean {
  return c.issuerRaw.equals(c.subjectRaw) && c.x509.checkIssued(c.x509) && c.x509.verify(c.x509.publicKey);
}

function issuedBy(child: Certificate, parent: Certificate): boolean {
  return child.issuerRaw.equals(parent.subjectRaw) && child.x509.verify(parent.x509.publicKey);
}

function fail(code: string, message: string, file?: string): never {
  throw new InvalidInputError(code, message, { file });
}

/** OpenSSL's xku_reject: an extKeyUsage extension that lacks the usage rejects the certificate. */
function ekuRejects(c: Certificate, usage: string): boolean {
  return c.extKeyUsage !== undefined && !c.extKeyUsage.includes(usage);
}

function isCa(c: Certificate): boolean {
  if (c.keyUsage !== undefined && !(c.keyUsage & KU.keyCertSign)) return false;
  if (c.basicConstraints) return c.basicConstraints.ca;
  // v1 self-signed roots are CAs by convention (OpenSSL check_ca returns 3).
  return c.x509.checkIssued(c.x509) && c.keyUsage === undefined && c.extKeyUsage === undefined;
}

function checkPurpose(c: Certificate, depth: number, purpose: CertPurpose, file?: string): void {
  if (purpose === 'any') return;
  const usage = purpose === 'smimesign' ? EKU.emailProtection : EKU.codeSigning;
  const label = purpose === 'smimesign' ? 'emailProtection (S/MIME signing)' : 'codeSigning';
  const hint = purpose === 'smimesign' ? '; a codeSigning certificate needs --check-purpose codesign (or any)' : '';
  if (ekuRejects(c, usage)) {
    fail('cert-purpose', `unsuitable certificate purpose: '${c.subject}' has extended key usage ${c.extKeyUsage!.join(',') || '(empty)'} without ${label}${depth === 0 ? hint : ''}`, file);
  }
  if (purpose === 'codesign' && depth === 0 && c.extKeyUsage === undefined) {
    fail('cert-purpose', `unsuitable certificate purpose: signer '${c.subject}' has no extended key usage codeSigning (required by --check-purpose codesign)`, file);
  }
  if (depth === 0 && c.keyUsage !== undefined && !(c.keyUsage & (KU.digitalSignature | KU.nonRepudiation))) {
    fail('cert-purpose', `unsuitable certificate purpose: signer '${c.subject}' key usage allows neither digitalSignature nor nonRepudiation`, file);
  }
}

function checkTime(c: Certificate, time: Date | false, file?: string): void {
  if (time === false) return;
  if (time < c.notBefore) fail('cert-not-yet-valid', `certificate '${c.subject}' is not valid before ${c.notBefore.toISOString()} (checked at ${time.toISOString()})`, file);
  if (time > c.notAfter) fail('cert-expired', `certificate '${c.subject}' expired on ${c.notAfter.toISOString()} (checked at ${time.toISOString()})`, file);
}

/** Build and check the chain from `leaf` to a keyring anchor; returns leaf … anchor. */
export function verifyChain(leaf: Certificate, opts: ChainOptions): Certificate[] {
  const { file } = opts;
  const isAnchor = (c: Certificate): boolean => opts.anchors.some((a) => a.der.equals(c.der));
  const chain: Certificate[] = [leaf];
  let cur = leaf;
  while (!(isAnchor(cur) && isSelfSigned(cur))) {
    if (chain.length > MAX_DEPTH) fail('cert-untrusted', `certificate chain of '${leaf.subject}' is longer than ${MAX_DEPTH}`, file);
    // Prefer the keyring's copy of an issuer, as OpenSSL's store lookup does.
    const issuer = opts.anchors.find((a) => issuedBy(cur, a)) ?? opts.untrusted.find((u) => u !== cur && issuedBy(cur, u));
    if (!issuer || chain.includes(issuer)) {
      if (isSelfSigned(cur)) fail('cert-untrusted', `self-signed certificate '${cur.subject}' in the chain of '${leaf.subject}' is not in the keyring`, file);
      fail('cert-untrusted', `untrusted signer: no certificate in the keyring or the signature issued '${cur.subject}' (issuer '${cur.issuer}'); check --keyring`, file);
    }
    chain.push(issuer);
    cur = issuer;
  }
  chain.forEach((c, depth) => {
    checkTime(c, opts.time, file);
    if (depth > 0) {
      if (!isCa(c)) fail('cert-invalid-ca', `certificate '${c.subject}' issued '${chain[depth - 1]!.subject}' but is not a CA`, file);
      const pl = c.basicConstraints?.pathLen;
      // Intermediates below this CA, the leaf excluded.
      if (pl !== undefined && depth - 1 > pl) fail('cert-path-length', `path length constraint ${pl} of '${c.subject}' exceeded`, file);
    }
    checkPurpose(c, depth, opts.purpose, file);
  });
  return chain;
}
