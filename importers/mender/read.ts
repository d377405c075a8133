import { createHash } from 'node:crypto';
import { Sha256Meter } from '../../src/crypto/sha256-stream.ts';
import { InvalidInputError } from '../../src/errors.ts';
import { BufferSource, type RandomAccessSource } from '../../src/fs/source.ts';
import { scanTar } from '../../src/fs/tar/reader.ts';
import { tarStream, type TarMember } from '../../src/fs/tar/stream.ts';
import type { TrustOptions } from '../types.ts';
import { mergeJson, readHeader, type Header, type HeaderInfo, type Json, type JsonObject, type StateScript } from './header.ts';
import { Manifest } from './manifest.ts';
import { compressionOfName, decodedMember, hashRange, memberError, readSmall, type MemberCompression } from './members.ts';
import { checkManifestSignature, loadVerificationKey } from './signature.ts';

/** One payload file of `data/NNNN.tar*`, verified against the manifest during the open pass. */
export interface DataFile {
  index: number;
  name: string;
  /** Of the uncompressed file. */
  size: number;
  sha256: string;
  compression: MemberCompression;
  /** Listed in manifest-augment: not covered by the signature. */
  augmented: boolean;
  /** The outer `data/NNNN.tar*` member holding it. */
  member: TarMember;
  /** Its content's byte range in the artifact, when the data tar is stored uncompressed. */
  stored?: { offset: number; size: number };
  /** What the filesystem layer recognises in its first bytes (ext4, squashfs, vfat, disk, tar). */
  imageKind?: string;
}

export interface PayloadInfo {
  index: number;
  type: string | null;
  files: DataFile[];
  provides: Record<string, string>;
  depends: Record<string, string | string[]>;
  clearsProvides: string[];
  metaData: JsonObject | null;
}

export interface MenderContents {
  version: 2 | 3;
  info: HeaderInfo;
  signed: boolean;
  verified: boolean | null;
  /** Why `verified` is false. */
  verifyError?: string;
  augmented: boolean;
  scripts: StateScript[];
  /** The `header.tar*` member, where the state scripts are read from again. */
  header: TarMember;
  payloads: PayloadInfo[];
  warnings: string[];
}

const MAX_SMALL = 16 << 20; // version, manifest, signature: far smaller in practice
const DATA_NAME = /^data\/(\d{4})\.tar(\.gz|\.xz|\.zst)?$/;
const FILE_NAME = /^[\w\-.,]+$/;

/** Enough of a file to recognise a filesystem (superblocks, GPT header and entries, tar header). */
const HEAD_BYTES = 64 << 10;

/** What the filesystem layer makes of a file's first bytes; undefined when nothing. */
async function recognise(head: Buffer, name: string): Promise<string | undefined> {
  if (head.length < 512) return undefined;
  const { detectImage } = await import('../../src/fs/open-image.ts');
  return detectImage(new BufferSource(head, name)).catch(() => undefined);
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

class ArtifactReader {
  private readonly file: string;
  private readonly it: AsyncIterator<TarMember>;
  private pending: TarMember | undefined;
  private readonly seen: string[] = [];
  readonly manifest: Manifest;

  constructor(private readonly src: RandomAccessSource) {
    this.file = src.name;
    this.it = scanTar(src)[Symbol.asyncIterator]();
    this.manifest = new Manifest(src.name);
  }

  fail(code: string, message: string): never {
    throw new InvalidInputError(code, message, { file: this.file });
  }

  async peek(): Promise<TarMember | undefined> {
    if (!this.pending) {
      const r = await this.it.next().catch((err: unknown) => {
        if (err instanceof InvalidInputError && err.code === 'truncated') this.fail('truncated', `the artifact is truncated: ${err.message}`);
        throw err;
      });
      if (r.done) return undefined;
      if (r.value.type !== 'file') this.fail('mender-structure', `outer member '${r.value.path}' is a ${r.value.type}; a Mender artifact holds regular files only`);
      this.pending = r.value;
    }
    return this.pending;
  }

  async take(): Promise<TarMember> {
    const m = (await this.peek())!;
    this.pending = undefined;
    this.seen.push(m.path);
    return m;
  }

  /** The next member must be one of `names`; `expected` words the error. */
  async expect(accept: (name: string) => boolean, expected: string): Promise<TarMember> {
    const m = await this.peek();
    if (!m) this.fail('mender-structure', `the artifact ends after [${this.seen.join(', ')}]; expected ${expected} next (truncated?)`);
    if (!accept(m.path)) this.fail('mender-structure', `wrong member order: found '${m.path}' after [${this.seen.join(', ')}], expected ${expected}`);
    return this.take();
  }

  async optional(accept: (name: string) => boolean): Promise<TarMember | undefined> {
    const m = await this.peek();
    return m && accept(m.path) ? this.take() : undefined;
  }

  /** A header member: its stored bytes checked against the manifest first, then decoded and parsed. */
  async header(m: TarMember, version: 2 | 3, augment: boolean): Promise<Header> {
    this.manifest.check(m.path, await hashRange(this.src, m.dataOffset, m.dataSize));
    const decoded = decodedMember(this.src, m, compressionOfName(m.path));
    try {
      return await readHeader(tarStream(decoded, `${this.file}:${m.path}`), { file: this.file, member: m.path, version, augment });
    } catch (err) {
      throw memberError(err, this.file, m.path);
    } finally {
      decoded.destroy();
    }
  }

  /** Hash every file of a data member while decoding it once. */
  async data(m: TarMember, index: number, v2files: string[] | undefined): Promise<DataFile[]> {
    const compression = compressionOfName(m.path);
    const decoded = decodedMember(this.src, m, compression);
    const out: DataFile[] = [];
    try {
      for await (const { member: f, body } of tarStream(decoded, `${this.file}:${m.path}`)) {
        if (f.type === 'dir') continue;
        const path = `data/${String(index).padStart(4, '0')}/${f.path}`;
        if (f.type !== 'file') this.fail('mender-payload', `${m.path}: '${f.path}' is a ${f.type}; payload entries are regular files`);
        if (!FILE_NAME.test(f.path)) this.fail('mender-payload', `${m.path}: payload file name '${f.path}' has characters other than letters, digits and ".,_-"`);
        if (v2files && !v2files.includes(f.path)) this.fail('mender-payload', `${m.path}: '${f.path}' is not in headers/${path.slice(5, 9)}/files`);
        if (!this.manifest.has(path)) this.fail('mender-unlisted', `'${path}' is not listed in the manifest (checksum missing), so it cannot be verified`);
        const h = new Sha256Meter();
        const head: Buffer[] = [];
        for await (const c of body()) {
          if (h.size < HEAD_BYTES) head.push(c.subarray(0, HEAD_BYTES - h.size));
          h.update(c);
        }
        const size = h.size;
        if (size !== f.size) this.fail('truncated', `${m.path}: '${f.path}' ends after ${size} of ${f.size} bytes`);
        const entry = this.manifest.check(path, h.digest());
        const file: DataFile = { index, name: f.path, size, sha256: entry.sha256, compression, augmented: entry.augmented, member: m };
        if (compression === 'none' && !f.sparse) file.stored = { offset: m.dataOffset + f.dataOffset, size };
        const imageKind = await recognise(Buffer.concat(head), path);
        if (imageKind) file.imageKind = imageKind;
        out.push(file);
      }
    } catch (err) {
      throw memberError(err, this.file, m.path);
    } finally {
      decoded.destroy();
    }
    return out;
  }

  async end(): Promise<void> {
    const m = await this.peek();
    if (m) this.fail('mender-structure', `unexpected member '${m.path}' after [${this.seen.join(', ')}]`);
  }
}

function parseVersion(raw: Buffer, file: string): 2 | 3 {
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new InvalidInputError('mender-version', "the 'version' member is not JSON", { file });
  }
  const o = v as { format?: unknown; version?: unknown };
  if (typeof v !== 'object' || v === null || Object.keys(v).some((k) => k !== 'format' && k !== 'version')) {
    throw new InvalidInputError('mender-version', "the 'version' member must be {\"format\":\"mender\",\"version\":N}", { file });
  }
  if (o.format !== 'mender') throw new InvalidInputError('mender-version', `format is '${String(o.format)}', not 'mender'`, { file });
  if (o.version === 1) throw new InvalidInputError('mender-version', 'Mender artifact format version 1 is no longer supported (mender-artifact refuses it too); rebuild it with mender-artifact write (version 3)', { file });
  if (o.version !== 2 && o.version !== 3) throw new InvalidInputError('mender-version', `unsupported Mender artifact format version ${String(o.version)} (2 and 3 are read)`, { file });
  return o.version;
}

/** One pass over the artifact: structure, manifest, signature, headers, and every payload file hashed. */
export async function readMender(src: RandomAccessSource, trust: TrustOptions): Promise<MenderContents> {
  const file = src.name;
  const key = trust.key && !trust.noVerify ? await loadVerificationKey(trust.key) : undefined;
  const r: ArtifactReader = new ArtifactReader(src);

  const versionRaw = await readSmall(src, await r.expect((n) => n === 'version', "'version'"), 4096);
  const version = parseVersion(versionRaw, file);
  const manifestMember = await r.expect((n) => n === 'manifest', "'manifest'");
  const manifestRaw = await readSmall(src, manifestMember, MAX_SMALL);
  r.manifest.add(manifestRaw, 'manifest', false);
  r.manifest.check('version', sha256(versionRaw));

  const sig = await r.optional((n) => n === 'manifest.sig');
  let verified: boolean | null = null;
  let verifyError: string | undefined;
  if (key) {
    verifyError = sig ? (checkManifestSignature(manifestRaw, await readSmall(src, sig, 4096), key) ?? undefined) : 'the artifact is not signed (no manifest.sig) but --key was given';
    verified = verifyError === undefined;
  }

  const augmentManifest = version === 3 ? await r.optional((n) => n === 'manifest-augment') : undefined;
  if (augmentManifest) r.manifest.add(await readSmall(src, augmentManifest, MAX_SMALL), 'manifest-augment', true);

  const headerNames = version === 3 ? /^header\.tar(\.gz|\.xz|\.zst)?$/ : /^header\.tar(\.gz|\.xz)?$/;
  const headerMember = await r.expect((n) => headerNames.test(n), `'header.tar[.gz|.xz|.zst]'${version === 3 && !augmentManifest && !sig ? " or 'manifest.sig' / 'manifest-augment'" : ''}`);
  const header = await r.header(headerMember, version, false);
  const warnings = [...header.warnings];
  const payloadTypes = [...header.info.payloadTypes];
  const payloadHeaders = header.payloads;

  let augmented = false;
  if (augmentManifest) {
    const suffix = headerMember.path.slice('header.tar'.length);
    const augMember = await r.expect((n) => n === `header-augment.tar${suffix}`, `'header-augment.tar${suffix}' (manifest-augment requires it)`);
    const aug = await r.header(augMember, version, true);
    augmented = true;
    if (aug.payloads.length > payloadTypes.length) r.fail('mender-augment', `header-augment describes ${aug.payloads.length} payloads; header-info lists ${payloadTypes.length}`);
    aug.payloads.forEach((a, i) => {
      const augType = aug.info.payloadTypes[i];
      if (augType) payloadTypes[i] = augType;
      const p = payloadHeaders[i];
      p.provides = mergeJson(p.provides, a.provides, `headers/${i}/type-info artifact_provides`, file) as Record<string, string> | undefined;
      p.depends = mergeJson(p.depends as Json, a.depends as Json, `headers/${i}/type-info artifact_depends`, file) as Record<string, string | string[]> | undefined;
      if (a.clearsProvides) p.clearsProvides = a.clearsProvides;
      p.metaData = (mergeJson(p.metaData, a.metaData, `headers/${i}/meta-data`, file) ?? null) as JsonObject | null;
    });
    warnings.push('the artifact is augmented: manifest-augment, header-augment and the files they list are not covered by the signature');
  } else if ((await r.peek())?.path.startsWith('header-augment')) {
    r.fail('mender-structure', `'${(await r.peek())!.path}' without a manifest-augment`);
  }

  const payloads: PayloadInfo[] = payloadTypes.map((type, index) => {
    const h = payloadHeaders[index];
    return { index, type, files: [], provides: h.provides ?? {}, depends: h.depends ?? {}, clearsProvides: h.clearsProvides ?? [], metaData: h.metaData };
  });

  let last = -1;
  for (let m = await r.peek(); m && m.path.startsWith('data/'); m = await r.peek()) {
    const match = DATA_NAME.exec(m.path);
    if (!match || (version === 2 && match[2] === '.zst')) r.fail('mender-structure', `unexpected member '${m.path}' (payloads are data/NNNN.tar[.gz|.xz|.zst])`);
    const index = Number(match[1]);
    if (index >= payloads.length) r.fail('mender-structure', `'${m.path}' has no payload in header-info (it lists ${payloads.length})`);
    if (index <= last) r.fail('mender-structure', `'${m.path}' is out of order or repeated`);
    last = index;
    await r.take();
    payloads[index].files = await r.data(m, index, version === 2 ? payloadHeaders[index].files ?? [] : undefined);
  }
  await r.end();
  r.manifest.assertAllSeen();
  for (const p of payloads) if (p.type === 'rootfs-image' && p.files.length > 1) warnings.push(`payload ${p.index} is a rootfs-image with ${p.files.length} files; the device installs only one`);
  if (augmented) for (const p of payloads) for (const f of p.files) if (f.augmented) warnings.push(`data/${String(p.index).padStart(4, '0')}/${f.name} comes from manifest-augment and is unauthenticated`);

  return { version, info: header.info, signed: Boolean(sig), verified, verifyError, augmented, scripts: header.scripts, header: headerMember, payloads, warnings };
}
