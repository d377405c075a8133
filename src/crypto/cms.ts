import { createHash, createVerify, verify as verifySignature, type KeyObject } from 'node:crypto';
import { Readable } from 'node:stream';
import { EnvironmentError, InvalidInputError } from '../errors.ts';
import type { RandomAccessSource } from '../fs/source.ts';
import { verifyChain, type CertPurpose } from './chain.ts';
import { DerError, TAG, children, ctx, decodeTime, expectTag, oidString, parseDer, type Tlv } from './der.ts';
import { parseCertificate, parsePemCertificates, type Certificate } from './x509.ts';

/**
 * CMS (RFC 5652) signedData verification on node:crypto, as OpenSSL's CMS_verify(CMS_BINARY) does it:
 * the content (inline or detached, streamed) digest against messageDigest, the signature over the signed
 * attributes, and the signer's chain to the trust anchors with time and purpose checks.
 * Shared by the RAUC (bundle signatures) and SWUpdate (sw-description.sig) importers.
 */
export const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  envelopedData: '1.2.840.113549.1.7.3',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
} as const;

const DIGESTS: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '2.16.840.1.101.3.4.2.4': 'sha224',
};

/** Signature algorithms whose verification is "digest + key type" (the key says RSA or ECDSA). */
const SIGNATURE_ALGS = new Set([
  '1.2.840.113549.1.1.1', // rsaEncryption
  '1.2.840.113549.1.1.5', // sha1WithRSAEncryption
  '1.2.840.113549.1.1.11', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12', // sha384WithRSAEncryption
  '1.2.840.113549.1.1.13', // sha512WithRSAEncryption
  '1.2.840.10045.2.1', // id-ecPublicKey (some signers put the key OID here)
  '1.2.840.10045.4.3.2', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3', // ecdsa-with-SHA384
  '1.2.840.10045.4.3.4', // ecdsa-with-SHA512
]);

export interface CertInfo {
  subject: string;
  issuer: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  spkiSha256: string;
}

export interface SignerInfo {
  sid: { issuer: Buffer; serial: Buffer } | { subjectKeyId: Buffer };
  digestAlgorithm: string;
  signedAttrs?: { raw: Buffer; attrs: Map<string, Tlv[]> };
  signatureAlgorithm: string;
  signature: Buffer;
}

export interface SignedData {
  eContentType: string;
  /** The encapsulated content; undefined for a detached signature. */
  content?: Buffer;
  certificates: Certificate[];
  signers: SignerInfo[];
}

export interface VerifyCmsOptions {
  /** DER ContentInfo holding a signedData. */
  cms: Buffer;
  /** The signed content for a detached signature, streamed through the digest (never buffered). */
  detachedContent?: Readable | RandomAccessSource;
  /** PEM text of the trust anchors (keyring / CA file); CRL blocks are ignored. */
  trustAnchors: string;
  /** Required certificate purpose; default smimesign (OpenSSL's S/MIME signing, RAUC's default). */
  purpose?: CertPurpose;
  /** Time for validity checks; default now; false skips them. */
  time?: Date | false;
  /** Named in error messages. */
  file?: string;
  /** What the signed content is, for messages ("payload", "manifest", "sw-description"); default "signed content". */
  contentName?: string;
}

export interface CmsVerified {
  eContentType: string;
  /** Inline content (RAUC verity/crypt manifest); undefined when detached. */
  content?: Buffer;
  /** Hex digest of the signed content, computed while reading it. */
  contentDigest: string;
  signingTime?: Date;
  signer: CertInfo;
  /** Signer first, trust anchor last. */
  chain: CertInfo[];
}

function malformed(err: unknown, file?: string): never {
  if (err instanceof InvalidInputError) throw err;
  const what = err instanceof DerError ? err.message : String(err);
  throw new InvalidInputError('cms-malformed', `CMS signature is malformed (${what}); the file is corrupt or truncated`, { file, cause: err });
}

export function certInfo(c: Certificate): CertInfo {
  return {
    subject: c.subject,
    issuer: c.issuer,
    serial: c.serial.toString('hex'),
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    spkiSha256: c.spkiSha256,
  };
}

/** The content type and explicit content of a DER ContentInfo. */
export function parseContentInfo(der: Buffer): { contentType: string; content: Tlv } {
  const ci = children(expectTag(parseDer(der), TAG.SEQUENCE, 'ContentInfo'));
  const contentType = oidString(expectTag(ci[0], TAG.OID, 'contentType'));
  const wrap = expectTag(ci[1], ctx(0), 'content');
  return { contentType, content: children(wrap)[0]! };
}

function parseSigner(el: Tlv): SignerInfo {
  const f = children(expectTag(el, TAG.SEQUENCE, 'SignerInfo'));
  let i = 1;
  const sidEl = f[i++]!;
  let sid: SignerInfo['sid'];
  if (sidEl.tag === TAG.SEQUENCE) {
    const s = children(sidEl);
    sid = { issuer: expectTag(s[0], TAG.SEQUENCE, 'issuer').raw, serial: expectTag(s[1], TAG.INTEGER, 'serialNumber').value };
  } else if (sidEl.tag === ctx(0, false)) {
    sid = { subjectKeyId: sidEl.value };
  } else throw new DerError('unknown signer identifier');
  const digestAlgorithm = oidString(children(expectTag(f[i++], TAG.SEQUENCE, 'digestAlgorithm'))[0]!);
  let signedAttrs: SignerInfo['signedAttrs'];
  if (f[i]?.tag === ctx(0)) {
    const el = f[i++]!;
    const attrs = new Map<string, Tlv[]>();
    for (const a of children(el)) {
      const [type, values] = children(a);
      attrs.set(oidString(type!), children(expectTag(values, TAG.SET, 'attribute values')));
    }
    // The signature covers the attributes re-tagged as a SET OF (RFC 5652 §5.4).
    const raw = Buffer.from(el.raw);
    raw[0] = TAG.SET;
    signedAttrs = { raw, attrs };
  }
  const signatureAlgorithm = oidString(children(expectTag(f[i++], TAG.SEQUENCE, 'signatureAlgorithm'))[0]!);
  const signature = expectTag(f[i++], TAG.OCTET_STRING, 'signature').value;
  return { sid, digestAlgorithm, signedAttrs, signatureAlgorithm, signature };
}

/** The bytes of an OCTET STRING, primitive or (BER) constructed from nested chunks. */
export function octetString(el: Tlv, depth = 0): Buffer {
  if (el.tag === TAG.OCTET_STRING || el.tag === ctx(0, false)) return el.value;
  if (depth > 8) throw new DerError('constructed OCTET STRING nested too deep');
  return Buffer.concat(children(el).map((c) => octetString(c, depth + 1)));
}

/** Parse a ContentInfo holding signedData, without checking anything. */
export function parseSignedData(der: Buffer, file?: string): SignedData {
  try {
    const { contentType, content } = parseContentInfo(der);
    if (contentType !== OID.signedData) throw new DerError(`content type ${contentType} is not signedData`);
    const f = children(expectTag(content, TAG.SEQUENCE, 'SignedData'));
    const encap = children(expectTag(f[2], TAG.SEQUENCE, 'encapContentInfo'));
    const eContentType = oidString(expectTag(encap[0], TAG.OID, 'eContentType'));
    let econtent: Buffer | undefined;
    if (encap[1]) {
      const octets = children(expectTag(encap[1], ctx(0), 'eContent'))[0]!;
      econtent = octetString(octets);
    }
    const certificates: Certificate[] = [];
    let i = 3;
    if (f[i]?.tag === ctx(0)) {
      for (const c of children(f[i++]!)) if (c.tag === TAG.SEQUENCE) certificates.push(parseCertificate(Buffer.from(c.raw)));
    }
    if (f[i]?.tag === ctx(1)) i++; // CRLs: RAUC does not check them by default
    const signers = children(expectTag(f[i], TAG.SET, 'signerInfos')).map(parseSigner);
    return { eContentType, content: econtent, certificates, signers };
  } catch (err) {
    malformed(err, file);
  }
}

/** The certificate a signer identifies (issuer and serial, or subject key identifier) among those the CMS carries. */
export function findSignerCert(sd: SignedData, s: SignerInfo): Certificate | undefined {
  const sid = s.sid;
  if ('subjectKeyId' in sid) return sd.certificates.find((c) => c.subjectKeyId?.equals(sid.subjectKeyId));
  return sd.certificates.find((c) => c.issuerRaw.equals(sid.issuer) && c.serial.equals(sid.serial));
}

function digestName(oid: string, file?: string): string {
  const name = DIGESTS[oid];
  if (!name) throw new InvalidInputError('cms-unsupported', `CMS digest algorithm ${oid} is not supported`, { file });
  return name;
}

async function digestStream(names: string[], input: Readable | RandomAccessSource, verifiers: ReturnType<typeof createVerify>[]): Promise<Map<string, Buffer>> {
  const hashes = new Map(names.map((n) => [n, createHash(n)]));
  const stream = input instanceof Readable ? input : input.stream();
  for await (const chunk of stream) {
    for (const h of hashes.values()) h.update(chunk as Buffer);
    for (const v of verifiers) v.update(chunk as Buffer);
  }
  return new Map([...hashes].map(([n, h]) => [n, h.digest()]));
}

function attrValue(s: SignerInfo, oid: string): Tlv | undefined {
  return s.signedAttrs?.attrs.get(oid)?.[0];
}

/** Verify a CMS signedData; throws InvalidInputError (exit 1) with a precise message when it does not verify. */
export async function verifyCmsSignedData(opts: VerifyCmsOptions): Promise<CmsVerified> {
  const { file } = opts;
  const sd = parseSignedData(opts.cms, file);
  if (sd.signers.length === 0) throw new InvalidInputError('cms-unsigned', 'CMS signedData has no signer', { file });
  if (sd.content === undefined && !opts.detachedContent) {
    throw new InvalidInputError('cms-no-content', 'CMS signature is detached but no signed content was given', { file });
  }
  let anchors: Certificate[];
  try {
    anchors = parsePemCertificates(opts.trustAnchors);
  } catch (err) {
    throw new EnvironmentError('keyring-invalid', `keyring holds an unreadable certificate: ${(err as Error).message}`, { cause: err });
  }
  if (anchors.length === 0) throw new EnvironmentError('keyring-empty', 'keyring holds no PEM certificate; pass a PEM file with the trusted CA certificates');

  const signerCerts = sd.signers.map((s) => {
    const c = findSignerCert(sd, s);
    if (!c) throw new InvalidInputError('cms-no-signer-cert', 'CMS signature does not carry the signer certificate', { file });
    digestName(s.digestAlgorithm, file);
    if (!SIGNATURE_ALGS.has(s.signatureAlgorithm)) throw new InvalidInputError('cms-unsupported', `CMS signature algorithm ${s.signatureAlgorithm} is not supported`, { file });
    return c;
  });
  // Signers without signed attributes sign the content itself: feed it to a verifier while hashing.
  const direct = sd.signers.map((s) => (s.signedAttrs ? undefined : createVerify(digestName(s.digestAlgorithm))));
  const names = [...new Set(sd.signers.map((s) => digestName(s.digestAlgorithm)))];
  const input = sd.content ?? opts.detachedContent!;
  const digests = await digestStream(names, Buffer.isBuffer(input) ? Readable.from([input]) : input, direct.filter((v) => v !== undefined));

  let signingTime: Date | undefined;
  let chain: Certificate[] = [];
  for (const [i, s] of sd.signers.entries()) {
    const cert = signerCerts[i]!;
    const digest = digests.get(digestName(s.digestAlgorithm))!;
    const key: KeyObject = cert.x509.publicKey;
    let ok: boolean;
    try {
      if (s.signedAttrs) {
        const md = attrValue(s, OID.messageDigest);
        if (!md || !md.value.equals(digest)) {
          throw new InvalidInputError('cms-content-mismatch', `signature verification failed: the signed content digest does not match (content verify error): the ${opts.contentName ?? 'signed content'} was modified or the signature belongs to other content`, { file });
        }
        const ct = attrValue(s, OID.contentType);
        if (!ct || oidString(ct) !== sd.eContentType) throw new InvalidInputError('cms-malformed', 'CMS contentType attribute does not match the encapsulated content type', { file });
        const st = attrValue(s, OID.signingTime);
        if (st) signingTime = decodeTimeSafe(st);
        ok = verifySignature(digestName(s.digestAlgorithm), s.signedAttrs.raw, key, s.signature);
      } else {
        ok = direct[i]!.verify(key, s.signature);
      }
    } catch (err) {
      if (err instanceof InvalidInputError) throw err;
      ok = false;
    }
    if (!ok) throw new InvalidInputError('cms-signature', `signature verification failed: the signature of '${cert.subject}' does not verify (CMS or signed attributes modified)`, { file });
    const c = verifyChain(cert, { anchors, untrusted: sd.certificates, purpose: opts.purpose ?? 'smimesign', time: opts.time ?? new Date(), file });
    if (i === 0) chain = c;
  }
  return {
    eContentType: sd.eContentType,
    content: sd.content,
    contentDigest: digests.get(digestName(sd.signers[0]!.digestAlgorithm))!.toString('hex'),
    signingTime,
    signer: certInfo(chain[0]!),
    chain: chain.map(certInfo),
  };
}

function decodeTimeSafe(el: Tlv): Date | undefined {
  try {
    return decodeTime(el);
  } catch {
    return undefined; // an odd signingTime encoding does not decide trust
  }
}
