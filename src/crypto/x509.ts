import { X509Certificate, createHash } from 'node:crypto';
import { DerError, TAG, children, ctx, decodeTime, expectTag, oidString, parseDer, type Tlv } from './der.ts';

/**
 * X.509 certificates as CMS verification needs them: the raw issuer/serial for signer matching, the
 * extensions that decide purpose and CA status (which node:crypto does not expose), and node's
 * X509Certificate for signature checks and display.
 */
export interface Certificate {
  der: Buffer;
  x509: X509Certificate;
  /** Raw DER of the issuer and subject Names, compared bytewise as OpenSSL does for matching. */
  issuerRaw: Buffer;
  subjectRaw: Buffer;
  /** Contents octets of the serial INTEGER. */
  serial: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** basicConstraints; undefined when the extension is absent. */
  basicConstraints?: { ca: boolean; pathLen?: number };
  /** keyUsage bits (bit 0 = digitalSignature … bit 8 = decipherOnly); undefined when absent. */
  keyUsage?: number;
  /** extKeyUsage OIDs; undefined when absent. */
  extKeyUsage?: string[];
  subjectKeyId?: Buffer;
  /** OpenSSL-style one-line subject: "C = DE, O = Test Org, CN = Test Org Release-1". */
  subject: string;
  issuer: string;
  /** SHA-256 of the SubjectPublicKeyInfo (rauc info prints it). */
  spkiSha256: string;
}

export const KU = { digitalSignature: 1 << 0, nonRepudiation: 1 << 1, keyCertSign: 1 << 5 } as const;
export const EKU = {
  emailProtection: '1.3.6.1.5.5.7.3.4',
  codeSigning: '1.3.6.1.5.5.7.3.3',
} as const;

const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
const OID_EXT_KEY_USAGE = '2.5.29.37';
const OID_SUBJECT_KEY_ID = '2.5.29.14';

function oneLine(name: string): string {
  return name.split('\n').filter(Boolean).map((rdn) => rdn.replace('=', ' = ')).join(', ');
}

/** Parse one DER certificate; throws DerError when it is not one. */
export function parseCertificate(der: Buffer): Certificate {
  const cert = expectTag(parseDer(der), TAG.SEQUENCE, 'Certificate');
  const tbs = expectTag(children(cert)[0], TAG.SEQUENCE, 'tbsCertificate');
  const f = children(tbs);
  let i = 0;
  if (f[0]?.tag === ctx(0)) i++; // version
  const serial = expectTag(f[i++], TAG.INTEGER, 'serialNumber').value;
  i++; // signature algorithm
  const issuerRaw = expectTag(f[i++], TAG.SEQUENCE, 'issuer').raw;
  const validity = children(expectTag(f[i++], TAG.SEQUENCE, 'validity'));
  const subjectRaw = expectTag(f[i++], TAG.SEQUENCE, 'subject').raw;
  const spki = expectTag(f[i++], TAG.SEQUENCE, 'subjectPublicKeyInfo');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(der);
    void x509.publicKey; // a malformed key must fail here, not later inside a verification
  } catch (err) {
    throw new DerError(`certificate rejected by the X.509 parser: ${(err as Error).message}`);
  }
  const out: Certificate = {
    der,
    x509,
    issuerRaw,
    subjectRaw,
    serial,
    notBefore: decodeTime(validity[0]!),
    notAfter: decodeTime(validity[1]!),
    subject: oneLine(x509.subject),
    issuer: oneLine(x509.issuer),
    spkiSha256: createHash('sha256').update(spki.raw).digest('hex'),
  };
  const extWrap = f.slice(i).find((e) => e.tag === ctx(3));
  if (extWrap) parseExtensions(children(expectTag(children(extWrap)[0], TAG.SEQUENCE, 'extensions')), out);
  return out;
}

function parseExtensions(exts: Tlv[], out: Certificate): void {
  for (const ext of exts) {
    const parts = children(ext);
    const oid = oidString(parts[0]!);
    const value = parseDer(parts[parts.length - 1]!.value);
    switch (oid) {
      case OID_BASIC_CONSTRAINTS: {
        const bc = children(value);
        const ca = bc[0]?.tag === TAG.BOOLEAN && bc[0].value[0] !== 0;
        const pl = bc.find((e) => e.tag === TAG.INTEGER);
        out.basicConstraints = { ca, pathLen: pl ? pl.value.readUIntBE(0, Math.min(pl.value.length, 4)) : undefined };
        break;
      }
      case OID_KEY_USAGE: {
        // BIT STRING: first octet = unused bits, then bits numbered from the most significant bit.
        let bits = 0;
        for (let b = 0; b < (value.value.length - 1) * 8 && b < 16; b++) {
          if (value.value[1 + (b >> 3)]! & (0x80 >> (b & 7))) bits |= 1 << b;
        }
        out.keyUsage = bits;
        break;
      }
      case OID_EXT_KEY_USAGE:
        out.extKeyUsage = children(value).map(oidString);
        break;
      case OID_SUBJECT_KEY_ID:
        out.subjectKeyId = value.value;
        break;
    }
  }
}

/** Every CERTIFICATE block of a PEM text (CRLs and keys in the same file are skipped, as OpenSSL's store does). */
export function parsePemCertificates(pem: string): Certificate[] {
  const out: Certificate[] = [];
  const re = /-----BEGIN (?:X509 )?CERTIFICATE-----([\s\S]*?)-----END (?:X509 )?CERTIFICATE-----/g;
  for (const m of pem.matchAll(re)) out.push(parseCertificate(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')));
  return out;
}
