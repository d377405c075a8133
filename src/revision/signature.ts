/**
 * pvs@2 signatures (PV signature.c; pantacor/pvr libpvr/pvslib.go `JwsSign`): JWS with a detached
 * payload stored in the state as `_sigs/<name>.json`; sign, and verify in Pantavisor's secure-boot modes.
 */
import { X509Certificate, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { InvalidInputError } from '../errors.ts';
import { canonicalize, isJsonObject, newJsonObject, parseJson, type JsonObject, type JsonValue, type RawPair } from './canonical-json.ts';
import { pvsPatternMatches } from './glob.ts';
import type { Issue, State } from './state.ts';
import { algForKey, chainProblem, keyFitsAlg, publicJwk, sameKey, type PvsAlg } from './trust.ts';

export const PVS_SPEC = 'pvs@2';
export type SecurebootMode = 'disabled' | 'audit' | 'lenient' | 'strict';
export const SECUREBOOT_MODES: readonly SecurebootMode[] = ['disabled', 'audit', 'lenient', 'strict'];

export interface PvsMatch {
  include: string[];
  exclude: string[];
}

/** pvr's `pvr sig add --part X` defaults (pantacor/pvr cmdsigadd.go). */
export function partMatch(part: string): PvsMatch {
  return { include: [`${part}/**`, `_config/${part}/**`], exclude: [`${part}/src.json`, `_sigs/${part}.json`] };
}

/** A stored state seen as Pantavisor sees it: parsed value plus raw top-level pairs in stored order. */
export interface StoredState {
  value: State;
  pairs: RawPair[];
}

/** Keys marked by a signature: every include match, minus every exclude match (exclude wins). */
export function selectKeys(keys: string[], match: PvsMatch): { included: string[]; covered: string[] } {
  const included: string[] = [];
  const covered: string[] = [];
  for (const k of keys) {
    const inc = match.include.some((p) => pvsPatternMatches(p, k));
    const exc = match.exclude.some((p) => pvsPatternMatches(p, k));
    if (inc || exc) covered.push(k);
    if (inc && !exc) included.push(k);
  }
  return { included, covered };
}

export type PayloadRule = 'pvr' | 'runtime';

/**
 * The signed payload. `pvr`: canonical JSON of the selected pairs. `runtime`: Pantavisor's concatenation of
 * the raw stored pairs in stored order (equal to the pvr form exactly when the stored state is canonical).
 */
export function payload(stored: StoredState, match: PvsMatch, rule: PayloadRule): Buffer {
  if (rule === 'pvr') {
    const { included } = selectKeys(Object.keys(stored.value), match);
    const sel = newJsonObject();
    for (const k of included) sel[k] = stored.value[k] as JsonValue;
    return Buffer.from(canonicalize(sel), 'utf8');
  }
  const { included } = selectKeys(stored.pairs.map((p) => p.key), match);
  const chosen = new Set(included);
  const parts = stored.pairs
    .filter((p) => chosen.has(p.key))
    .map((p) => `"${p.rawKey}":${p.raw[0] === '{' || p.raw[0] === '[' || p.raw[0] === '"' ? p.raw : `"${p.raw}"`}`);
  // PV signature.c writes "{" then overwrites the last comma with "}": with no pair that leaves just "}".
  return Buffer.from(parts.length ? `{${parts.join(',')}}` : '}', 'utf8');
}

const b64url = (b: Buffer): string => b.toString('base64url');

function signatureBytes(alg: PvsAlg, key: KeyObject, input: Buffer): Buffer {
  const hash = alg === 'ES384' ? 'sha384' : alg === 'ES512' ? 'sha512' : 'sha256';
  return alg === 'RS256' ? cryptoSign(hash, input, key) : cryptoSign(hash, input, { key, dsaEncoding: 'ieee-p1363' });
}

function signatureValid(alg: PvsAlg, key: KeyObject, input: Buffer, sig: Buffer): boolean {
  const hash = alg === 'ES384' ? 'sha384' : alg === 'ES512' ? 'sha512' : 'sha256';
  try {
    return alg === 'RS256' ? cryptoVerify(hash, input, key, sig) : cryptoVerify(hash, input, { key, dsaEncoding: 'ieee-p1363' }, sig);
  } catch {
    return false;
  }
}

export interface SignOptions {
  /** Signature name: stored as `_sigs/<name>.json`. */
  name: string;
  key: KeyObject;
  match: PvsMatch;
  /** Certificate chain, leaf first; the leaf must carry the signing key. */
  x5c?: X509Certificate[];
}

/**
 * Sign a state as pvr does: protected header `{alg, jwk, pvs, typ:"PVS", x5c?}` (JSON members in Go's
 * sorted map order), payload = canonical JSON of the selected pairs. Returns the new state with
 * `_sigs/<name>.json` set; the caller stores it canonical so the runtime rule gives the same payload.
 */
export function signState(state: State, options: SignOptions): { key: string; state: State } {
  const sigKey = `_sigs/${options.name}.json`;
  if (!/^[^/\0\\]+$/.test(options.name) || options.name === '.' || options.name === '..') {
    throw new InvalidInputError('usage', `signature name '${options.name}' must be one path component`);
  }
  const alg = algForKey(options.key);
  const match: PvsMatch = { include: [...options.match.include], exclude: [...options.match.exclude] };
  if (!match.exclude.includes(sigKey)) match.exclude.push(sigKey);
  const header: Record<string, unknown> = { alg, jwk: publicJwk(options.key), pvs: match, typ: 'PVS' };
  if (options.x5c?.length) {
    if (!sameKey(options.x5c[0]!.publicKey, options.key)) {
      throw new InvalidInputError('x5c', 'the first certificate of the x5c chain does not carry the signing key; put the leaf first');
    }
    header.x5c = options.x5c.map((c) => c.raw.toString('base64'));
  }
  const protectedB64 = b64url(Buffer.from(JSON.stringify(header), 'utf8'));
  const next = newJsonObject();
  for (const [k, v] of Object.entries(state)) if (k !== sigKey) next[k] = v;
  const body = payload({ value: next, pairs: [] }, match, 'pvr');
  const input = Buffer.from(`${protectedB64}.${b64url(body)}`, 'ascii');
  const sig = newJsonObject();
  sig['#spec'] = PVS_SPEC;
  sig.protected = protectedB64;
  sig.signature = b64url(signatureBytes(alg, options.key, input));
  next[sigKey] = sig;
  return { key: sigKey, state: next };
}

// ---------------------------------------------------------------------------------------------- verify

export interface TrustOptions {
  /** CA certificates an x5c chain must anchor in (PV_SECUREBOOT_TRUSTSTORE). */
  truststore?: X509Certificate[];
  /** The device public key (pvs/trust/pub.pem); used for signatures without x5c, or when no truststore is given. */
  pubkey?: KeyObject;
  /** Time for certificate validity (default now). */
  at?: Date;
  /**
   * PV_OEM_NAME and PV_SECUREBOOT_OEM_TRUSTSTORE: a chain whose leaf CN is the OEM name, on a signature
   * that covers nothing under `bsp/**` or `<name>/**`, is checked against the OEM truststore instead.
   */
  oem?: { name: string; truststore: X509Certificate[] };
}

/** The CN of a certificate subject ("" when none). */
function commonName(cert: X509Certificate): string {
  return /^CN=(.*)$/m.exec(cert.subject)?.[1] ?? '';
}

/** Which truststore Pantavisor checks this chain against (PV signature.c `_set_path_trust_crts`). */
function anchorsFor(leaf: X509Certificate, included: string[], trust: TrustOptions): { anchors?: X509Certificate[]; which: string } {
  const oem = trust.oem;
  if (oem && commonName(leaf) === oem.name) {
    const reserved = ['bsp/**', `${oem.name}/**`];
    if (!included.some((k) => reserved.some((p) => pvsPatternMatches(p, k)))) return { anchors: oem.truststore, which: 'the OEM truststore' };
  }
  return { anchors: trust.truststore, which: 'the truststore' };
}

export interface SignatureReport {
  name: string;
  alg: string;
  /** The signature is cryptographically valid over its payload. */
  verified: boolean;
  /** How the signer was trusted: x5c chain to the truststore, the given public key, or only the embedded key. */
  trust: 'chain' | 'pubkey' | 'embedded-key' | 'none';
  covers: string[];
  problems: string[];
}

export interface SignatureCheck {
  ok: boolean;
  /** Pantavisor's result string. */
  result: 'OK' | 'Signature validation failed' | 'State not fully covered by signatures';
  signatures: SignatureReport[];
  uncovered: string[];
  errors: Issue[];
  warnings: Issue[];
}

interface Header {
  alg: string;
  match: PvsMatch;
  jwk?: JsonObject;
  x5c: string[];
}

function parseHeader(protectedB64: string): Header {
  const h = parseJson(Buffer.from(protectedB64, 'base64url'));
  if (!isJsonObject(h)) throw new Error('protected header is not a JSON object');
  const pvs = h.pvs;
  const strings = (v: JsonValue | undefined, what: string): string[] => {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`pvs.${what} must be an array of strings`);
    return v as string[];
  };
  if (!isJsonObject(pvs)) throw new Error('protected header has no pvs {include, exclude}');
  if (typeof h.alg !== 'string') throw new Error('protected header has no alg');
  if (h.typ !== undefined && h.typ !== 'PVS') throw new Error(`typ is ${JSON.stringify(h.typ)}, not "PVS"`);
  const x5c = h.x5c === undefined ? [] : strings(h.x5c, 'x5c');
  return { alg: h.alg, match: { include: strings(pvs.include, 'include'), exclude: pvs.exclude === undefined ? [] : strings(pvs.exclude, 'exclude') }, jwk: isJsonObject(h.jwk) ? h.jwk : undefined, x5c };
}

function verifyOne(name: string, sigValue: JsonObject, stored: StoredState, rule: PayloadRule, trust: TrustOptions): SignatureReport & { covered: string[] } {
  const report = { name, alg: '', verified: false, trust: 'none' as SignatureReport['trust'], covers: [] as string[], problems: [] as string[], covered: [] as string[] };
  if (typeof sigValue.protected !== 'string' || typeof sigValue.signature !== 'string') {
    report.problems.push('signature object needs string "protected" and "signature"');
    return report;
  }
  let header: Header;
  try {
    header = parseHeader(sigValue.protected);
  } catch (err) {
    report.problems.push(`bad protected header: ${(err as Error).message}`);
    return report;
  }
  report.alg = header.alg;
  const sel = selectKeys(rule === 'pvr' ? Object.keys(stored.value) : stored.pairs.map((p) => p.key), header.match);
  report.covers = sel.included;
  report.covered = sel.covered;
  if (!['RS256', 'ES256', 'ES384', 'ES512'].includes(header.alg)) {
    report.problems.push(`unsupported alg ${header.alg}`);
    return report;
  }
  let certs: X509Certificate[];
  let key: KeyObject | undefined;
  try {
    certs = header.x5c.map((c) => new X509Certificate(Buffer.from(c, 'base64')));
    const jwkKey = header.jwk ? createPublicKey({ key: header.jwk as unknown as JsonWebKey, format: 'jwk' }) : undefined;
    // Pantavisor verifies with the x5c leaf when present; the embedded jwk must then be that same key.
    key = certs[0]?.publicKey ?? jwkKey ?? trust.pubkey;
    if (certs[0] && jwkKey && !sameKey(certs[0].publicKey, jwkKey)) report.problems.push('embedded jwk differs from the x5c leaf certificate key');
  } catch (err) {
    report.problems.push(`bad key material in the header: ${(err as Error).message}`);
    return report;
  }
  if (!key) {
    report.problems.push('no key: the header has neither x5c nor jwk; pass --pubkey');
    return report;
  }
  if (!keyFitsAlg(key, header.alg)) {
    report.problems.push(`the signer key cannot make ${header.alg} signatures`);
    return report;
  }
  const input = Buffer.from(`${sigValue.protected}.${b64url(payload(stored, header.match, rule))}`, 'ascii');
  report.verified = signatureValid(header.alg as PvsAlg, key, input, Buffer.from(sigValue.signature, 'base64url'));
  if (!report.verified) {
    report.problems.push(
      sel.included.length === 0
        ? `the keys it covers are absent from this state (include ${JSON.stringify(header.match.include)} matches no key), so its payload cannot match what was signed`
        : 'signature does not match the covered keys and values (a covered key was changed, added or removed, or the signature is corrupt)',
    );
  }
  const { anchors, which } = certs[0] ? anchorsFor(certs[0], sel.included, trust) : { anchors: undefined, which: '' };
  if (certs.length && (trust.truststore || trust.oem)) {
    const why = anchors ? chainProblem(certs, anchors, trust.at) : `leaf '${commonName(certs[0]!)}' may not use the OEM truststore for these keys, and no truststore was given`;
    if (why) report.problems.push(`x5c chain rejected by ${which}: ${why}`);
    else report.trust = 'chain';
  } else if (trust.pubkey) {
    if (sameKey(key, trust.pubkey)) report.trust = 'pubkey';
    else report.problems.push('signed by a key other than the given public key');
  } else if (trust.truststore) {
    // Pantavisor checks a signature without x5c against its public key file, never against the truststore.
    report.problems.push('no x5c certificate chain to check against the truststore; pass --pubkey for signatures made without one');
  } else if (report.verified) {
    report.trust = 'embedded-key';
  }
  return report;
}

/**
 * Check every pvs@2 signature of a stored state as `pv_signature_verify` does: a signature is any value
 * that is an object with `"#spec":"pvs@2"`; lenient = all must verify; strict = and every key outside
 * `_sigs/` must be covered (matched by some include or exclude); audit = coverage gaps only warn.
 */
export function verifyStateSignatures(stored: StoredState, mode: SecurebootMode, trust: TrustOptions = {}, rule: PayloadRule = 'pvr'): SignatureCheck {
  const out: SignatureCheck = { ok: true, result: 'OK', signatures: [], uncovered: [], errors: [], warnings: [] };
  if (mode === 'disabled') return out;
  const covered = new Set<string>();
  for (const [name, value] of Object.entries(stored.value)) {
    if (!isJsonObject(value) || value['#spec'] !== PVS_SPEC) continue;
    const r = verifyOne(name, value, stored, rule, trust);
    r.covered.forEach((k) => covered.add(k));
    const { covered: _c, ...report } = r;
    out.signatures.push(report);
    for (const p of r.problems) out.errors.push({ code: 'signature', key: name, message: p });
    if (!trust.truststore && !trust.pubkey && !trust.oem && r.verified) {
      out.warnings.push({ code: 'signature-trust', key: name, message: 'verified with the key embedded in the signature only; pass --truststore or --pubkey to check who signed it' });
    }
  }
  if (out.errors.length) {
    out.ok = false;
    out.result = 'Signature validation failed';
    return out;
  }
  if (mode === 'strict' || mode === 'audit') {
    out.uncovered = Object.keys(stored.value).filter((k) => !k.startsWith('_sigs/') && !covered.has(k));
    const issues = out.uncovered.map((k) => ({ code: 'coverage', key: k, message: `${k} is not covered by any signature` }));
    if (mode === 'strict' && issues.length) {
      out.ok = false;
      out.result = 'State not fully covered by signatures';
      out.errors.push(...issues);
    } else out.warnings.push(...issues);
  }
  return out;
}
