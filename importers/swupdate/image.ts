/**
 * Reading a .swu in one pass as swupdate does: sw-description (and its signature) first, verified and
 * parsed before any artifact is read; then every member streamed once with its crc byte sum, its sha256
 * and, for the selected entries, the decrypted and decompressed size and sha256.
 */
import { createDecipheriv } from 'node:crypto';
import { readCpioMembers, byteSum, cpioChecksumError, type CpioFormat, type CpioMember } from '../../src/archive/cpio.ts';
import { OID, parseContentInfo } from '../../src/crypto/cms.ts';
import { decryptEnvelopedData } from '../../src/crypto/enveloped.ts';
import { EnvironmentError, InvalidInputError, UsageError } from '../../src/errors.ts';
import { readNamedFile } from '../../src/util/named-file.ts';
import { BufferSource, type RandomAccessSource } from '../../src/fs/source.ts';
import type { Payload, TrustOptions } from '../types.ts';
import { loadAesKeyFile, type AesKey } from './aes.ts';
import type { GroupNode } from './config-tree.ts';
import { Description, KNOWN_HANDLERS, findTemplates, hardwareMatches, type Entry, type Resolved, type Variant } from './description.ts';
import { parseJsonDescription } from './json.ts';
import { parseLibconfig } from './libconfig.ts';
import { makePayload, needsDecoding, scanMember, sha256Mismatch, type Decoding } from './payload.ts';
import { verifySignature, type SignatureVerdict } from './signature.ts';

export const DESCRIPTION = 'sw-description';
export const SIGNATURE = 'sw-description.sig';
/** swupdate refuses names of 256 bytes or more. */
const MAX_NAME_SIZE = 256;
const MAX_DESCRIPTION = 16 << 20;
const MAX_SIGNATURE = 1 << 20;
const HEAD_BYTES = 64 * 1024;

export interface SwuImage {
  cpioFormat: CpioFormat;
  descriptionFormat: 'libconfig' | 'json';
  descriptionEncrypted: boolean;
  signature: SignatureVerdict | null;
  boards: string[];
  selections: string[];
  variant: Variant;
  revision?: string;
  resolved: Resolved;
  payloads: { entry: Entry; payload: Payload }[];
  unreferenced: string[];
  warnings: string[];
}

async function readSmallMember(src: RandomAccessSource, m: CpioMember, limit: number): Promise<Buffer> {
  if (m.size > limit) throw new InvalidInputError('swu-member-size', `${m.name} is ${m.size} bytes, more than the ${limit} a description or signature can sensibly be`, { file: src.name });
  const data = await src.read(m.dataOffset, m.size);
  if (m.format === 'crc') {
    const sum = byteSum(data);
    if (sum !== m.check) throw cpioChecksumError(m, sum, src.name);
  }
  return data;
}

/**
 * sw-description as text: plain; AES-CBC with the key file (CONFIG_ENCRYPTED_SW_DESCRIPTION); or CMS
 * EnvelopedData for a device key (CONFIG_ASYM_ENCRYPTED_SW_DESCRIPTION, swupdate 2025.12), whose artifacts
 * then carry their own aes-key.
 */
async function descriptionText(raw: Buffer, aes: AesKey | undefined, trust: TrustOptions, file: string): Promise<{ text: string; plain: Buffer; encrypted: boolean }> {
  const plain = decodeUtf8(raw);
  if (plain !== undefined) return { text: plain, plain: raw, encrypted: false };
  if (isEnvelopedData(raw)) {
    if (!trust.decryptKey) {
      throw new EnvironmentError('decrypt-key-missing', 'sw-description is CMS EnvelopedData (asymmetric encryption): pass --decrypt-key PEM, the device private key swupdate gets with -K', { file });
    }
    const pem = (await readNamedFile(trust.decryptKey)).toString('utf8');
    const { content } = decryptEnvelopedData({ cms: raw, privateKeyPem: pem, file, keyFile: trust.decryptKey });
    const text = decodeUtf8(content);
    if (text === undefined) throw new InvalidInputError('description-decrypt', 'sw-description decrypts to binary data, not a description', { file });
    return { text, plain: content, encrypted: true };
  }
  if (!aes) throw new EnvironmentError('aes-key-missing', 'sw-description is binary, so it is encrypted: pass --aes-key FILE (swupdate key file "<key hex> <iv hex>")', { file });
  let out: Buffer;
  try {
    const d = createDecipheriv(`aes-${aes.key.length * 8}-cbc`, aes.key, aes.iv);
    out = Buffer.concat([d.update(raw), d.final()]);
  } catch (err) {
    throw new InvalidInputError('description-decrypt', `sw-description cannot be decrypted with --aes-key (${(err as Error).message}): wrong key or corrupt`, { file });
  }
  const text = decodeUtf8(out);
  if (text === undefined) throw new InvalidInputError('description-decrypt', 'sw-description decrypts to binary data: wrong --aes-key', { file });
  return { text, plain: out, encrypted: true };
}

function isEnvelopedData(raw: Buffer): boolean {
  try {
    return raw[0] === 0x30 && parseContentInfo(raw).contentType === OID.envelopedData;
  } catch {
    return false;
  }
}

function decodeUtf8(b: Buffer): string | undefined {
  if (b.includes(0)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return undefined;
  }
}

function parseDescription(text: string, file: string, notes: string[]): { root: GroupNode; format: 'libconfig' | 'json' } {
  // JSON starts with '{', which libconfig never accepts at top level (comments may come first in both).
  const first = text.replace(/^(?:\s+|\/\/[^\n]*\n?|\/\*[\s\S]*?\*\/|#[^\n]*\n?)*/, '')[0];
  if (first === '{') return { root: parseJsonDescription(text, file), format: 'json' };
  return { root: parseLibconfig(text, file, notes), format: 'libconfig' };
}

function chooseVariant(desc: Description, trust: TrustOptions, file: string, notes: string[]): { variant: Variant; revision?: string; boards: string[]; selections: string[] } {
  const { boards, selections } = desc.variants();
  const variant: Variant = {};
  let revision: string | undefined;
  if (trust.board !== undefined) {
    const [name, rev] = trust.board.split(':', 2);
    if (!name) throw new UsageError(`--board must be NAME or NAME:REVISION, not '${trust.board}'`);
    variant.board = name;
    revision = rev;
    if (!boards.includes(name)) notes.push(`board '${name}' has no section in sw-description${boards.length ? ` (boards: ${boards.join(', ')})` : ''}; the top-level settings apply`);
  } else if (boards.length === 1) {
    variant.board = boards[0];
    notes.push(`board '${boards[0]}' selected: it is the only board in sw-description (override with --board)`);
  } else if (boards.length > 1) {
    notes.push(`sw-description has sections for boards ${boards.join(', ')}: choose one with --board NAME (top-level settings shown)`);
  }
  if (trust.select !== undefined) {
    const parts = trust.select.split(',');
    if (parts.length !== 2 || !parts[0] || !parts[1]) throw new UsageError(`--select must be SET,MODE (as swupdate -e), not '${trust.select}'`);
    if (!selections.includes(trust.select)) {
      throw new UsageError(`sw-description has no software collection '${trust.select}'${selections.length ? `; found: ${selections.join(' ')}` : ' (it has no collections)'}`, { file, code: 'no-such-selection' });
    }
    [variant.set, variant.mode] = parts;
  }
  return { variant, revision, boards, selections };
}

/** Every board × collection combination, so artifacts of variants not selected are still hash-checked. */
function allVariants(desc: Description, boards: string[], selections: string[]): Resolved[] {
  const out: Resolved[] = [];
  for (const board of [undefined, ...boards]) {
    for (const sel of [undefined, ...selections]) {
      const [set, mode] = sel ? sel.split(',') : [];
      try {
        out.push(desc.resolve({ board, set, mode }));
      } catch {
        // a variant that does not resolve is reported when selected
      }
    }
  }
  return out;
}

export async function readSwu(src: RandomAccessSource, trust: TrustOptions): Promise<SwuImage> {
  const file = src.name;
  const members = readCpioMembers(src, { maxNameSize: MAX_NAME_SIZE });
  const first = await members.next();
  if (first.done) throw new InvalidInputError('swu-empty', 'the cpio archive is empty: no sw-description', { file });
  const descMember = first.value;
  if (descMember.name !== DESCRIPTION) {
    throw new InvalidInputError('swu-order', `first cpio member is '${descMember.name}', but a .swu must start with sw-description`, { file });
  }
  const descRaw = await readSmallMember(src, descMember, MAX_DESCRIPTION);
  let next = await members.next();
  let sig: Buffer | undefined;
  if (!next.done && next.value.name === SIGNATURE) {
    sig = await readSmallMember(src, next.value, MAX_SIGNATURE);
    next = await members.next();
  }
  const aes = trust.aesKey ? await loadAesKeyFile(trust.aesKey) : undefined;
  const { text, plain, encrypted } = await descriptionText(descRaw, aes, trust, file);
  // The signature covers the plaintext (swupdate verifies after decrypting).
  const signature = sig ? await verifySignature(sig, plain, trust, file) : null;
  const warnings: string[] = [];
  const { root, format } = parseDescription(text, file, warnings);
  const desc = new Description(root, file);
  const { variant, revision, boards, selections } = chooseVariant(desc, trust, file, warnings);
  const resolved = desc.resolve(variant);
  if (resolved.version === undefined) throw new InvalidInputError('sw-description', 'sw-description has no version (swupdate: "Missing version in configuration file")', { file });
  if (revision !== undefined) checkHardware(resolved, variant.board!, revision, file);

  const strictFindings: string[] = [];
  for (const t of findTemplates(root)) strictFindings.push(`unexpanded build template ${t}: this looks like a recipe template, not a built image`);
  const selected = resolved.entries.filter((e) => e.filename !== undefined && e.section !== 'partitions');
  for (const e of selected) {
    if (!KNOWN_HANDLERS.has(e.type)) {
      strictFindings.push(`${e.filename}: handler '${e.type || '(none)'}' is not one of swupdate's built-in handlers (swupdate: feature '${e.type}' … is absent unless the device adds it)`);
    }
    if (sig && !e.sha256) throw new InvalidInputError('sha256-missing', `${e.filename} has no sha256 in a signed sw-description, so it is not covered by the signature (swupdate: "Hash not set for ${e.filename} Type ${e.type}")`, { file });
    if (e.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(e.sha256) && !e.sha256.startsWith('@')) {
      throw new InvalidInputError('sha256-invalid', `${e.filename}: sha256 "${e.sha256}" at ${e.pos.line}:${e.pos.column} is not 64 hex digits`, { file });
    }
    if (!e.sha256) warnings.push(`${e.filename} has no sha256: only the cpio byte sum protects it`);
  }
  const hooked = selected.filter((e) => e.hook !== undefined).map((e) => `${e.filename} (${e.hook})`);
  if (hooked.length) warnings.push(`Lua hooks of embedded-script may change or skip these entries on the device, which pvmigrate does not run: ${hooked.join(', ')}`);
  if (trust.strict && strictFindings.length) throw new InvalidInputError('strict', `${strictFindings[0]} (--strict)`, { file });
  warnings.push(...strictFindings, ...desc.warnings);
  const encryptedSelected = selected.filter((e) => e.encrypted !== false && e.aesKey === undefined);
  if (encryptedSelected.length && !aes) {
    throw new EnvironmentError('aes-key-missing', `${encryptedSelected.map((e) => e.filename).join(', ')} ${encryptedSelected.length > 1 ? 'are' : 'is'} AES-encrypted: pass --aes-key FILE (swupdate key file "<key hex> <iv hex>")`, { file });
  }
  const direct = new Map<string, number>();
  for (const e of selected) if (e.installedDirectly) direct.set(e.filename!, (direct.get(e.filename!) ?? 0) + 1);
  for (const [name, n] of direct) if (n > 1) warnings.push(`${name} is installed-directly by ${n} entries; swupdate cannot stream one member to several handlers`);
  if (selected.length === 0 && Object.keys(resolved.bootenv).length === 0) {
    warnings.push(`nothing to install at this level${selections.length ? `; choose a software collection with --select (found: ${selections.join(' ')})` : ''}`);
  }

  // Entries of every variant, so a tampered artifact of a collection not selected is caught too.
  const others = allVariants(desc, boards, selections).flatMap((r) => r.entries).filter((e) => e.filename !== undefined && e.section !== 'partitions');
  const seen = new Set<string>();
  const payloads: SwuImage['payloads'] = [];
  const unreferenced: string[] = [];
  for (; !next.done; next = await members.next()) {
    const m = next.value;
    if (m.name === DESCRIPTION || m.name === SIGNATURE) {
      throw new InvalidInputError('swu-order', `${m.name} appears again as cpio member #${m.index}; it must be ${m.name === DESCRIPTION ? 'the first' : 'the second'} member only`, { file });
    }
    // swupdate's is_filename_valid: artifacts are plain relative names.
    if (m.name.startsWith('/') || m.name.split('/').includes('..')) {
      throw new InvalidInputError('swu-member-name', `cpio member #${m.index} is named '${m.name}': absolute or '..' names are refused (as swupdate does)`, { file });
    }
    if (seen.has(m.name)) throw new InvalidInputError('swu-member-duplicate', `cpio member '${m.name}' appears twice (#${m.index}); which copy is meant is ambiguous`, { file });
    seen.add(m.name);
    const mine = selected.filter((e) => e.filename === m.name);
    const theirs = others.filter((e) => e.filename === m.name);
    if (mine.length === 0 && theirs.length === 0) unreferenced.push(m.name);
    const toDecode = mine.filter(needsDecoding);
    const scan = await scanMember(src, m, toDecode, aes);
    for (const e of [...mine, ...theirs]) {
      if (e.sha256 && /^[0-9a-f]{64}$/.test(e.sha256) && e.sha256 !== scan.storedSha256) throw sha256Mismatch(m.name, e.sha256, scan.storedSha256, file);
      if (e.size !== undefined && e.size !== m.size) {
        throw new InvalidInputError('size-mismatch', `${m.name}: sw-description says size ${e.size}, the cpio member has ${m.size} bytes`, { file });
      }
    }
    for (const e of mine) {
      const decoding: Decoding = scan.decoded.get(e) ?? { sha256: scan.storedSha256, size: m.size, head: await src.read(m.dataOffset, Math.min(HEAD_BYTES, m.size)) };
      const imageKind = await recognise(decoding.head, m.name);
      payloads.push({ entry: e, payload: makePayload({ src, member: m, entry: e, decoding, aes, imageKind }) });
    }
  }
  if (next.done) {
    // GNU cpio and swugenerator pad to 512 bytes with zeros; anything else after the trailer is not swupdate's.
    const tail = src.size - next.value.trailerEnd;
    const extra = tail > 0 ? await src.read(next.value.trailerEnd, Math.min(tail, 64 * 1024)) : Buffer.alloc(0);
    if (tail > 512 || extra.some((b) => b !== 0)) warnings.push(`${tail} bytes follow the cpio trailer${extra.some((b) => b !== 0) ? ' (not zero padding)' : ''}; swupdate ignores them`);
  }
  const missing = [...new Set(selected.map((e) => e.filename!).filter((n) => !seen.has(n)))];
  if (missing.length) {
    throw new InvalidInputError('member-missing', `${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} referenced by sw-description but not in the archive (swupdate: "Required image file ${missing[0]} missing...aborting")`, { file });
  }
  const otherMissing = [...new Set(others.map((e) => e.filename!).filter((n) => !seen.has(n)))];
  if (otherMissing.length) warnings.push(`${otherMissing.join(', ')}: referenced by a board or collection not selected, and missing from the archive`);
  if (unreferenced.length) warnings.push(`unreferenced cpio members (swupdate skips them): ${unreferenced.join(', ')}`);
  // Keep sw-description order (partitions, images, files, scripts), not archive order.
  payloads.sort((a, b) => selected.indexOf(a.entry) - selected.indexOf(b.entry));
  return {
    cpioFormat: descMember.format,
    descriptionFormat: format,
    descriptionEncrypted: encrypted,
    signature,
    boards,
    selections,
    variant,
    revision,
    resolved,
    payloads,
    unreferenced,
    warnings,
  };
}

function checkHardware(r: Resolved, board: string, revision: string, file: string): void {
  if (!r.hardwareCompatibility) throw new InvalidInputError('hw-compatibility', `no hardware-compatibility for board '${board}' (swupdate: "HW compatibility not found")`, { file });
  if (!hardwareMatches(r.hardwareCompatibility, revision)) {
    throw new InvalidInputError('hw-compatibility', `revision '${revision}' of board '${board}' is not in hardware-compatibility [${r.hardwareCompatibility.join(', ')}] (swupdate: "SW not compatible with hardware")`, { file });
  }
}

/** What the filesystem layer makes of the decoded head; undefined when nothing (or the head is too short to tell). */
async function recognise(head: Buffer, name: string): Promise<string | undefined> {
  if (head.length === 0) return undefined;
  const { detectImage } = await import('../../src/fs/open-image.ts');
  return detectImage(new BufferSource(head, name)).catch(() => undefined);
}
