import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { EnvironmentError, InvalidInputError } from '../../src/errors.ts';
import type { RandomAccessSource } from '../../src/fs/source.ts';
import type { Artifact, Importer, Payload, SourceMetadata, TrustOptions } from '../types.ts';
import { openBundle, readSmall, type Bundle } from './bundle.ts';
import { casyncBlobStream, parseCaibx } from './casync.ts';
import { openImageTree } from './image-tree.ts';
import type { ImageType, ManifestImage } from './manifest.ts';
import { looksLikeBundle } from './trailer.ts';

/** RAUC `.raucb` bundles (plain, verity, crypt), detected by the CMS the trailer points at. */
export const importer: Importer = {
  format: 'rauc',
  detect: looksLikeBundle,
  async open(src: RandomAccessSource, trust: TrustOptions): Promise<Artifact> {
    const bundle = await openBundle(src, trust);
    return new RaucArtifact(src, bundle, trust.castr);
  },
};

const BLOCK_HASH_INDEX = 'block-hash-index';
/** Image types the filesystem layer may open (by content: a raw image is often an ext4 or a disk). */
const TREE_TYPES = new Set<ImageType>(['ext4', 'vfat', 'squashfs', 'tar', 'raw', 'unknown', 'ext4-caibx', 'vfat-caibx', 'squashfs-caibx', 'raw-caibx']);

/** A stream check: the image must have exactly the manifest's size and SHA-256, or the stream errors. */
function checkImage(name: string, size: number | undefined, sha256: string | undefined, file: string): Transform {
  const hash = createHash('sha256');
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (size !== undefined && seen > size) return cb(new InvalidInputError('rauc-image-size', `image '${name}' is longer than the manifest's size ${size}`, { file }));
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      if (size !== undefined && seen !== size) return cb(new InvalidInputError('rauc-image-size', `image '${name}' is ${seen} bytes, the manifest says ${size}`, { file }));
      const got = hash.digest('hex');
      if (sha256 !== undefined && got !== sha256) return cb(new InvalidInputError('rauc-image-hash', `image '${name}' has sha256 ${got}, the manifest says ${sha256}: the image was modified`, { file }));
      cb();
    },
  });
}

function isCasync(img: ManifestImage): boolean {
  return img.type === 'caidx' || img.type === 'catar' || img.type.endsWith('-caibx');
}

/** A stream that fails at once (payloads whose content cannot be produced). */
function failing(err: Error): Readable {
  const t = new Transform();
  process.nextTick(() => t.destroy(err));
  return t;
}

const MAX_INDEX = 16 << 20;

class RaucArtifact implements Artifact {
  readonly format = 'rauc' as const;
  readonly file: string;
  readonly signed = true;
  readonly verified: boolean | null;
  readonly payloads: Payload[];
  readonly source: SourceMetadata;
  readonly warnings: string[];

  constructor(
    private readonly src: RandomAccessSource,
    private readonly bundle: Bundle,
    private readonly castr: string | undefined,
  ) {
    this.file = src.name;
    this.verified = bundle.verified;
    this.warnings = bundle.warnings;
    const m = bundle.manifest;
    // RAUC has no artifact name; description, build and [meta.*] travel as provides for the revision's metadata.
    const provides: Record<string, string> = {};
    if (m.description !== undefined) provides['rauc.description'] = m.description;
    if (m.build !== undefined) provides['rauc.build'] = m.build;
    for (const [label, kv] of Object.entries(m.meta)) for (const [k, v] of Object.entries(kv)) provides[`rauc.meta.${label}.${k}`] = v;
    this.source = { version: m.version, compatible: [m.compatible], provides };
    this.payloads = m.images.flatMap((img) => this.payloadOf(img));
  }

  private payloadOf(img: ManifestImage): Payload[] {
    const file = this.file;
    const where = `[image.${img.slotClass}${img.variant ? '.' + img.variant : ''}${img.artifact ? '/' + img.artifact : ''}]`;
    if (!img.filename) {
      this.warnings.push(`${where} has type ${img.type} and no file: nothing to import`);
      return [];
    }
    const entry = this.bundle.files.get(img.filename);
    if (!entry || entry.type !== 'file') throw new InvalidInputError('rauc-image-missing', `manifest ${where} names '${img.filename}', which is not a file in the bundle`, { file });
    let blockHashIndex: string | undefined;
    if (img.adaptive.includes(BLOCK_HASH_INDEX)) {
      const idx = this.bundle.files.get(`${img.filename}.${BLOCK_HASH_INDEX}`);
      const size = img.size ?? entry.size;
      if (!idx) this.warnings.push(`${where} is adaptive (block-hash-index) but '${img.filename}.${BLOCK_HASH_INDEX}' is missing`);
      else if (idx.size !== Math.ceil(size / 4096) * 32) this.warnings.push(`'${idx.path.slice(1)}' is ${idx.size} bytes; ${size} bytes of image need ${Math.ceil(size / 4096) * 32}`);
      else blockHashIndex = idx.path.slice(1);
    }
    const casync = isCasync(img);
    const tree = this.bundle.tree;
    const bundleFile = this.file;
    // A rebuilt casync blob is the original image: name it so (the manifest's filename is the index).
    const blobIndex = img.type.endsWith('-caibx');
    const payload: Payload = {
      name: blobIndex ? img.filename.replace(/\.caibx$/, '') : img.filename,
      kind: 'image',
      size: img.size ?? entry.size,
      sha256: img.sha256 ?? '',
      attributes: {
        slotClass: img.slotClass,
        variant: img.variant,
        artifact: img.artifact,
        type: img.type,
        hooks: img.hooks,
        adaptive: img.adaptive,
        blockHashIndex,
        casync,
        indexFile: casync ? img.filename : undefined,
        convert: img.convert,
      },
      stream(): Readable {
        const check = checkImage(img.filename!, img.size, img.sha256, bundleFile);
        const source = casync ? casyncContent() : tree.open(entry);
        source.on('error', (e) => check.destroy(e));
        return source.pipe(check);
      },
    };
    const castr = this.castr;
    const casyncContent = (): Readable => {
      if (!blobIndex) {
        return failing(new InvalidInputError('rauc-casync', `image '${img.filename}' is a casync directory tree (${img.type}); only blob indexes (.caibx) can be reconstructed`, { file: bundleFile }));
      }
      if (!castr) {
        const store = `${bundleFile.replace(/\.raucb$/, '')}.castr`;
        return failing(
          new EnvironmentError('rauc-casync-store', `image '${img.filename}' is a casync index (${img.type}): its content is in a chunk store, by default '${store}/' next to the bundle; pass --castr <store dir> to rebuild it`, { file: bundleFile }),
        );
      }
      const out = new PassThrough();
      readSmall(tree, entry, MAX_INDEX, bundleFile)
        .then((buf) => {
          const blob = casyncBlobStream(parseCaibx(buf, `${bundleFile} (${img.filename})`), castr, bundleFile);
          blob.on('error', (e) => out.destroy(e));
          blob.pipe(out);
        })
        .catch((e: Error) => out.destroy(e));
      return out;
    };
    if (TREE_TYPES.has(img.type)) payload.tree = () => openImageTree(`${bundleFile} (${img.filename})`, () => payload.stream());
    return [payload];
  }

  toJSON(): unknown {
    const b = this.bundle;
    const m = b.manifest;
    return {
      format: 'rauc',
      bundleFormat: b.format,
      compatible: m.compatible,
      version: m.version ?? null,
      description: m.description ?? null,
      build: m.build ?? null,
      signed: true,
      verified: b.verified,
      signer: b.signer ? { subject: b.signer.subject, chain: b.chain } : null,
      payloads: m.images
        .filter((i) => i.filename)
        .map((i) => ({
          name: i.filename,
          slotClass: i.slotClass,
          variant: i.variant ?? null,
          type: i.type,
          size: i.size ?? b.files.get(i.filename!)?.size ?? null,
          sha256: i.sha256 ?? null,
        })),
      hooks: m.hooks ?? null,
      meta: m.meta,
    };
  }

  describe(): string {
    const b = this.bundle;
    const m = b.manifest;
    const lines = [
      `RAUC bundle ${basename(this.file)}`,
      `  format:      ${b.format}${b.format === 'crypt' ? (b.encryptedCms ? ' [encrypted CMS]' : ' [unencrypted CMS]') : ''}`,
      `  compatible:  ${m.compatible}`,
      `  version:     ${m.version ?? '-'}`,
    ];
    if (m.description) lines.push(`  description: ${m.description}`);
    if (m.build) lines.push(`  build:       ${m.build}`);
    lines.push(`  manifest:    sha256 ${b.manifestHash}`);
    lines.push(
      b.verified === true
        ? `  signature:   verified, signed by '${b.signer!.subject}'${b.chain.length > 1 ? ` via ${b.chain.slice(1).map((c) => `'${c.subject}'`).join(' → ')}` : ''}${b.signingTime ? ` at ${b.signingTime.toISOString()}` : ''}`
        : `  signature:   not verified (--no-verify)${b.signer ? `; claims signer '${b.signer.subject}'` : ''}`,
    );
    lines.push(`  images (${this.payloads.length}):`);
    for (const p of this.payloads) {
      const a = p.attributes;
      lines.push(`    ${p.name}  slot class ${String(a.slotClass)}${a.variant ? ` variant ${String(a.variant)}` : ''}  type ${String(a.type)}  ${p.size} bytes  sha256 ${p.sha256}`);
    }
    if (m.hooks?.filename) lines.push(`  hooks:       ${m.hooks.filename} (${m.hooks.hooks.join(', ')})`);
    for (const [label, kv] of Object.entries(m.meta)) for (const [k, v] of Object.entries(kv)) lines.push(`  meta.${label}.${k} = ${v}`);
    for (const w of this.warnings) lines.push(`  warning: ${w}`);
    return lines.join('\n');
  }

  async close(): Promise<void> {
    await this.bundle.tree.close();
    await this.src.close();
  }
}
