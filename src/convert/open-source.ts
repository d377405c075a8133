import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { detectImporter } from '../../importers/index.ts';
import type { Artifact, Payload, TrustOptions } from '../../importers/types.ts';
import type { SourceFormat, SourceInfo } from '../build/source-json.ts';
import { InvalidInputError, PvError, fromSystemError } from '../errors.ts';
import type { FileTree } from '../fs/file-tree.ts';
import { detectImage } from '../fs/open-image.ts';
import { FileSource, type RandomAccessSource } from '../fs/source.ts';
import { TreeIndex } from '../split/tree-index.ts';
import { openImageArchive, type ImageArchive } from './oci-image.ts';

/** The root filesystem of a source that has none (an image archive): just "/". */
const EMPTY_TREE: FileTree = {
  async *walk() {
    yield { path: '/', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0, nlink: 2, inode: 1 };
  },
  open() {
    throw new Error('the empty tree has no files');
  },
  async close() {},
};

/** A payload other than the root filesystem and boot partition: becomes `_config`, an image container or a review item. */
export interface ExtraPayload {
  name: string;
  kind: Payload['kind'];
  size: number;
  attributes: Record<string, unknown>;
  stream(): Readable;
  /** When the payload is an archive or filesystem that was opened (a Mender directory module's update.tar …). */
  tree?: TreeIndex;
}

/** Per-payload facts only the artifact's JSON carries (SWUpdate `path`/`device` of files and images). */
function describedPayloads(artifact: Artifact): Map<string, Record<string, unknown>> {
  const doc = artifact.toJSON() as { payloads?: unknown };
  const out = new Map<string, Record<string, unknown>>();
  if (!Array.isArray(doc?.payloads)) return out;
  for (const p of doc.payloads as Record<string, unknown>[]) {
    if (typeof p?.name !== 'string') continue;
    const facts: Record<string, unknown> = {};
    for (const k of ['path', 'device']) if (typeof p[k] === 'string') facts[k] = p[k];
    out.set(p.name, facts);
  }
  return out;
}

export interface OpenedSource {
  info: SourceInfo;
  /** The root filesystem (an empty tree when the input is only a docker/OCI image archive). */
  rootfs: TreeIndex;
  hasRootfs: boolean;
  boot?: TreeIndex;
  /** docker/OCI image archives given as input, by their payload name: each becomes a container. */
  images: Map<string, ImageArchive>;
  extras: ExtraPayload[];
  warnings: string[];
  close(): Promise<void>;
}

async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
      h.update(chunk);
      size += chunk.length;
    }
  } catch (err) {
    throw fromSystemError(err, file);
  }
  return { sha256: h.digest('hex'), size };
}

/** A tree we can walk: the root filesystem is the one with /etc, the largest of those when several. */
function looksLikeRootfs(index: TreeIndex): boolean {
  return index.get('/etc')?.type === 'dir' && (index.has('/sbin') || index.has('/bin') || index.has('/usr'));
}

interface Candidate {
  index: TreeIndex;
  kind: string;
  size: number;
  name: string;
}

/** Open a filesystem image source as a tree, whatever it is (disks give one candidate per partition). */
async function candidatesOf(src: RandomAccessSource, name: string): Promise<Candidate[]> {
  const kind = await detectImage(src);
  if (kind === undefined) return [];
  const { openImage } = await import('../fs/open-image.ts');
  if (kind !== 'disk') return [{ index: await TreeIndex.build(await openImage(src), name), kind, size: src.size, name }];
  const { listPartitions, openPartition } = await import('../fs/disk/partitions.ts');
  const out: Candidate[] = [];
  for (const p of await listPartitions(src)) {
    const part = await openPartition(src, p.index);
    const inner = await detectImage(part);
    if (inner !== 'ext4' && inner !== 'squashfs' && inner !== 'vfat') continue;
    out.push({ index: await TreeIndex.build(await openImage(part), `${name} partition ${p.index}`), kind: inner, size: part.size, name: `partition ${p.index}` });
  }
  return out;
}

function pick(cands: Candidate[], file: string): { rootfs: TreeIndex; boot?: TreeIndex; rest: Candidate[] } {
  const roots = cands.filter((c) => c.kind !== 'vfat' && looksLikeRootfs(c.index)).sort((a, b) => b.size - a.size);
  const root = roots[0];
  if (!root) throw new InvalidInputError('no-rootfs', 'no root filesystem found (an ext4 or squashfs with /etc and /bin, /sbin or /usr)', { file });
  const boot = cands.find((c) => c.kind === 'vfat');
  return { rootfs: root.index, boot: boot?.index, rest: cands.filter((c) => c !== root && c !== boot) };
}

/** Whether the flags carry trust material for this format (a mender --key says nothing about a .swu). */
function trustGiven(format: Artifact['format'], t: TrustOptions): boolean {
  if (format === 'mender') return Boolean(t.key);
  if (format === 'rauc') return Boolean(t.keyring);
  return Boolean(t.ca || t.pubkey);
}

/** An artifact's filesystem payload as a tree: the importer's own tree(), or a verified scratch copy opened by content. */
async function payloadTree(p: Payload, scratch: string, file: string): Promise<{ trees: Candidate[]; copy?: FileSource }> {
  if (p.tree) {
    const tree: FileTree = await p.tree();
    return { trees: [{ index: await TreeIndex.build(tree, `${file} (${p.name})`), kind: String(p.attributes.imageKind ?? 'image'), size: p.size, name: p.name }] };
  }
  const copy = join(scratch, `payload-${createHash('sha256').update(p.name).digest('hex').slice(0, 16)}`);
  await pipeline(p.stream(), createWriteStream(copy)).catch((err: unknown) => {
    throw err instanceof PvError ? err : fromSystemError(err, copy);
  });
  const src = await FileSource.open(copy);
  const trees = await candidatesOf(src.slice(0, src.size, `${file} (${p.name})`), `${file} (${p.name})`);
  return { trees, copy: src };
}

/**
 * Open a conversion input by content: a .mender/.raucb/.swu artifact (verified with the trust flags), a raw
 * ext4/squashfs image, a partitioned disk image, a docker save / OCI image archive or a root filesystem
 * tarball. `scratch` holds decoded copies of payloads the importer cannot walk in place; the caller removes it.
 */
export async function openSource(file: string, trust: TrustOptions, scratch: string, displayName = basename(file)): Promise<OpenedSource> {
  const { sha256, size } = await hashFile(file);
  const src = await FileSource.open(file);
  const closers: (() => Promise<void>)[] = [() => src.close()];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    const importer = await detectImporter(src);
    if (importer) {
      const artifact: Artifact = await importer.open(src, trust);
      closers.push(() => artifact.close());
      if (trustGiven(artifact.format, trust) && !artifact.signed && !trust.noVerify) {
        throw new InvalidInputError('unsigned', 'the artifact is not signed but trust material was given; refusing an unsigned artifact', { file });
      }
      if (artifact.verified === false) throw new InvalidInputError('untrusted', 'signature verification failed; the artifact is not trusted', { file });
      const cands: Candidate[] = [];
      const extras: ExtraPayload[] = [];
      const fsPayloads = new Map<Candidate, Payload>();
      const described = describedPayloads(artifact);
      for (const p of artifact.payloads) {
        const maybeFs = p.kind === 'image' || p.kind === 'archive';
        const opened = maybeFs && !p.attributes.notConvertible ? await payloadTree(p, scratch, file) : { trees: [] };
        if (opened.copy) closers.push(() => opened.copy!.close());
        const attributes = { ...described.get(p.name), ...p.attributes };
        if (opened.trees.length === 0) extras.push({ name: p.name, kind: p.kind, size: p.size, attributes, stream: () => p.stream() });
        for (const t of opened.trees) {
          cands.push(t);
          fsPayloads.set(t, p);
          closers.push(() => t.index.tree.close());
        }
      }
      const { rootfs, boot, rest } = pick(cands, file);
      // Filesystems that are neither root nor boot (an appfs slot, a data partition) go to review with their bytes.
      for (const c of rest) {
        const p = fsPayloads.get(c)!;
        if (!extras.some((e) => e.name === p.name)) {
          extras.push({ name: p.name, kind: p.kind, size: p.size, attributes: { ...described.get(p.name), ...p.attributes, filesystem: c.kind }, stream: () => p.stream(), tree: c.index });
        }
      }
      const format: SourceFormat = artifact.format;
      const warnings = [...artifact.warnings];
      if (artifact.signed && artifact.verified === null && !trust.noVerify) {
        warnings.push(`${displayName} is signed but its signature was not checked: give its trust material (--key, --keyring or --ca/--pubkey) to verify it`);
      }
      return {
        info: { format, file: displayName, sha256, size, name: artifact.source.name, version: artifact.source.version, compatible: artifact.source.compatible, provides: artifact.source.provides },
        rootfs,
        hasRootfs: true,
        boot,
        images: new Map(),
        extras,
        warnings,
        close: closeAll,
      };
    }
    const kind = await detectImage(src);
    if (kind === 'ext4' || kind === 'squashfs' || kind === 'disk') {
      const cands = await candidatesOf(src, file);
      for (const c of cands) closers.push(() => c.index.tree.close());
      const { rootfs, boot } = pick(cands, file);
      return { info: { format: kind, file: displayName, sha256, size, compatible: [] }, rootfs, hasRootfs: true, boot, images: new Map(), extras: [], warnings: [], close: closeAll };
    }
    if (kind === 'tar') {
      const image = await openImageArchive(src);
      if (image) {
        return {
          info: { format: image.kind, file: displayName, sha256, size, name: image.ref ?? undefined, compatible: [image.config.platform] },
          rootfs: await TreeIndex.build(EMPTY_TREE, file),
          hasRootfs: false,
          images: new Map([[displayName, image]]),
          extras: [],
          warnings: [],
          close: closeAll,
        };
      }
      // Not an image archive: a root filesystem tarball (plain or gzip/xz/zstd).
      const cands = await candidatesOf(src, file);
      for (const c of cands) closers.push(() => c.index.tree.close());
      const { rootfs } = pick(cands, file);
      return { info: { format: 'tar', file: displayName, sha256, size, compatible: [] }, rootfs, hasRootfs: true, images: new Map(), extras: [], warnings: [], close: closeAll };
    }
    throw new InvalidInputError(
      'unknown-format',
      'not a Mender artifact, RAUC bundle, SWUpdate image, ext4/squashfs image, partitioned disk, rootfs tarball, docker save or OCI image archive (checked by content)',
      { file },
    );
  } catch (err) {
    await closeAll();
    throw err;
  }
}
