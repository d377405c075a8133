import { Sha256Meter } from '../../src/crypto/sha256-stream.ts';
import { Readable } from 'node:stream';
import { InvalidInputError } from '../../src/errors.ts';
import type { FileTree } from '../../src/fs/file-tree.ts';
import type { RandomAccessSource } from '../../src/fs/source.ts';
import { openTempCopy } from '../../src/fs/temp-image.ts';
import { tarStream } from '../../src/fs/tar/stream.ts';
import type { Artifact, Payload, PayloadKind } from '../types.ts';
import type { TarMember } from '../../src/fs/tar/stream.ts';
import type { StateScript } from './header.ts';
import { compressionOfName, decodedMember, memberError, type MemberCompression } from './members.ts';
import type { DataFile, MenderContents, PayloadInfo } from './read.ts';

function manifestPath(f: DataFile): string {
  return `data/${String(f.index).padStart(4, '0')}/${f.name}`;
}

/** What the converter can do with a payload file, from its module type and what its content is. */
function kindOf(type: string | null, f: DataFile): PayloadKind {
  if (type === 'rootfs-image') return 'image';
  if (type === 'script') return 'script';
  if (f.imageKind === 'tar') return 'archive'; // the directory module's update.tar, or a tarball in any module
  if (type === 'single-file' || type === 'directory') return 'file';
  return 'module';
}

/** Trees are offered for content the filesystem layer opens directly; a partitioned disk is left to the caller. */
const TREE_KINDS = new Set(['ext4', 'squashfs', 'vfat', 'tar']);

/** Where verified bytes come from: a file inside an outer member's (decoded) tar, or a stored byte range. */
interface Located {
  /** How messages name it: the manifest path, or scripts/<name>. */
  label: string;
  size: number;
  sha256: string;
  member: TarMember;
  compression: MemberCompression;
  /** Its path inside the member's tar. */
  inner: string;
  stored?: { offset: number; size: number };
}

/** Chunks passed through while hashed; the stream fails at the end unless size and sha256 match the verified ones. */
async function* verified(chunks: AsyncIterable<Buffer>, l: Located, file: string): AsyncGenerator<Buffer> {
  const m = new Sha256Meter();
  yield* m.through(chunks);
  const sha = m.digest();
  if (m.size !== l.size || sha !== l.sha256) {
    throw new InvalidInputError('mender-checksum', `'${l.label}' changed since it was verified: expected ${l.size} bytes with sha256 ${l.sha256}, read ${m.size} bytes with ${sha}`, { file });
  }
}

/** The file's bytes from the member's (decoded) tar. */
async function* fromMemberTar(src: RandomAccessSource, l: Located): AsyncGenerator<Buffer> {
  const decoded = decodedMember(src, l.member, l.compression);
  try {
    for await (const { member, body } of tarStream(decoded, `${src.name}:${l.member.path}`)) {
      if (member.path === l.inner) {
        yield* body();
        return;
      }
    }
    throw new InvalidInputError('mender-payload', `'${l.inner}' is no longer in ${l.member.path}`, { file: src.name });
  } catch (err) {
    throw memberError(err, src.name, l.member.path);
  } finally {
    decoded.destroy();
  }
}

function verifiedStream(src: RandomAccessSource, l: Located): Readable {
  const chunks = l.stored ? (src.stream(l.stored.offset, l.stored.size) as AsyncIterable<Buffer>) : fromMemberTar(src, l);
  return Readable.from(verified(chunks, l, src.name), { objectMode: false });
}

/** A state script as a payload, so reviews and `extract` get its content (covered by the header checksum). */
function scriptPayload(src: RandomAccessSource, c: MenderContents, s: StateScript): Payload {
  const l: Located = { label: `scripts/${s.name}`, size: s.size, sha256: s.sha256, member: c.header, compression: compressionOfName(c.header.path), inner: `scripts/${s.name}` };
  return {
    name: l.label,
    kind: 'script',
    size: s.size,
    sha256: s.sha256,
    stream: () => verifiedStream(src, l),
    attributes: { stateScript: true, fileName: s.name, state: /^[A-Za-z]+_(Enter|Leave|Error)/.exec(s.name)?.[0] ?? s.name, type: 'state-script' },
  };
}

function payloadOf(src: RandomAccessSource, p: PayloadInfo, f: DataFile): Payload {
  const kind = kindOf(p.type, f);
  const located: Located = { label: manifestPath(f), size: f.size, sha256: f.sha256, member: f.member, compression: f.compression, inner: f.name, stored: f.stored };
  const stream = (): Readable => verifiedStream(src, located);
  const payload: Payload = {
    name: manifestPath(f),
    kind,
    size: f.size,
    sha256: f.sha256,
    stream,
    attributes: {
      payloadIndex: p.index,
      payloadType: p.type,
      type: p.type,
      ...(f.imageKind ? { imageKind: f.imageKind } : {}),
      fileName: f.name,
      compression: f.compression,
      augmented: f.augmented,
      provides: p.provides,
      depends: p.depends,
      metaData: p.metaData,
    },
  };
  if (f.imageKind && TREE_KINDS.has(f.imageKind)) payload.tree = () => treeOf(src, f, stream);
  return payload;
}

/**
 * A filesystem payload as a FileTree: in place when the data tar is stored (the bytes were hashed in the open
 * pass), else decoded once into a hash-checked temp file that the tree's close() removes.
 */
async function treeOf(src: RandomAccessSource, f: DataFile, stream: () => Readable): Promise<FileTree> {
  const name = `${src.name}:${manifestPath(f)}`;
  if (!f.stored) return openTempCopy(stream, name, { prefix: 'pvmigrate-mender-' });
  const { openImage } = await import('../../src/fs/open-image.ts');
  return openImage(src.slice(f.stored.offset, f.stored.size, name));
}

function formatMap(m: Record<string, unknown>, indent: string): string[] {
  const keys = Object.keys(m);
  if (keys.length === 0) return [`${indent}(none)`];
  return keys.map((k) => `${indent}${k}: ${Array.isArray(m[k]) ? (m[k] as unknown[]).join(', ') : String(m[k])}`);
}

/** An opened, verified Mender artifact. */
export class MenderArtifact implements Artifact {
  readonly format = 'mender' as const;
  readonly file: string;
  readonly signed: boolean;
  readonly verified: boolean | null;
  readonly payloads: Payload[];
  readonly source: Artifact['source'];
  readonly warnings: string[];
  readonly verificationError: string | undefined;

  constructor(
    private readonly src: RandomAccessSource,
    private readonly c: MenderContents,
  ) {
    this.file = src.name;
    this.signed = c.signed;
    this.verified = c.verified;
    this.verificationError = c.verifyError;
    this.warnings = c.verifyError ? [c.verifyError, ...c.warnings] : [...c.warnings];
    this.payloads = [...c.payloads.flatMap((p) => p.files.map((f) => payloadOf(src, p, f))), ...c.scripts.map((s) => scriptPayload(src, c, s))];
    const rootfsVersion = c.payloads.map((p) => p.provides['rootfs-image.version']).find((v) => v !== undefined);
    this.source = { name: c.info.name, version: rootfsVersion, compatible: c.info.depends.device_type ?? [], provides: c.info.provides };
  }

  toJSON(): unknown {
    const c = this.c;
    return {
      format: 'mender',
      formatVersion: c.version,
      name: c.info.name,
      signed: c.signed,
      verified: c.verified,
      provides: c.info.provides,
      depends: c.info.depends,
      payloads: c.payloads.map((p) => ({
        index: p.index,
        type: p.type,
        files: p.files.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256, compression: f.compression })),
        provides: p.provides,
        depends: p.depends,
        clearsProvides: p.clearsProvides,
        metaData: p.metaData,
      })),
      scripts: c.scripts.map((s) => s.name),
    };
  }

  describe(): string {
    const c = this.c;
    const sig = !c.signed
      ? c.verified === false ? `not signed — FAILED: ${c.verifyError}` : 'not signed'
      : c.verified === null ? 'signed, not verified (give --key PEM to verify)' : c.verified ? 'signed and verified' : `signed — verification FAILED: ${c.verifyError}`;
    const lines = [
      `Mender artifact ${this.file}`,
      `  name:        ${c.info.name}`,
      `  format:      version ${c.version}${c.augmented ? ', augmented' : ''}`,
      `  signature:   ${sig}`,
      `  devices:     ${(c.info.depends.device_type ?? []).join(', ')}`,
      '  provides:',
      ...formatMap(c.info.provides, '    '),
      '  depends:',
      ...formatMap(c.info.depends, '    '),
      `  state scripts: ${c.scripts.length ? c.scripts.map((s) => s.name).join(', ') : '(none)'}`,
    ];
    for (const p of c.payloads) {
      lines.push(`  payload ${p.index}: ${p.type ?? '(empty / bootstrap)'}`);
      lines.push('    provides:', ...formatMap(p.provides, '      '));
      lines.push('    depends:', ...formatMap(p.depends, '      '));
      if (p.clearsProvides.length) lines.push(`    clears provides: ${p.clearsProvides.join(', ')}`);
      if (p.metaData) lines.push(`    meta-data: ${JSON.stringify(p.metaData)}`);
      if (p.files.length === 0) lines.push('    files: (none)');
      for (const f of p.files) lines.push(`    ${f.sha256}  ${String(f.size).padStart(10)}  ${f.name}${f.compression === 'none' ? '' : ` (${f.compression})`}${f.augmented ? ' [augmented, unauthenticated]' : ''}`);
    }
    for (const w of c.warnings) lines.push(`  warning: ${w}`);
    return lines.join('\n');
  }

  close(): Promise<void> {
    return this.src.close();
  }
}
