import { PassThrough, Transform, type Readable } from 'node:stream';
import { sha256For } from '../../src/crypto/parallel-sha256.ts';
import { EnvironmentError, InvalidInputError } from '../../src/errors.ts';
import type { Payload } from '../types.ts';
import { readSmall, type Bundle } from './bundle.ts';
import { casyncBlobStream, parseCaibx } from './casync.ts';
import { openTempCopy } from '../../src/fs/temp-image.ts';
import type { ImageType, ManifestImage } from './manifest.ts';

const BLOCK_HASH_INDEX = 'block-hash-index';
/** Image types the filesystem layer may open (by content: a raw image is often an ext4 or a disk). */
const TREE_TYPES = new Set<ImageType>(['ext4', 'vfat', 'squashfs', 'tar', 'raw', 'unknown', 'ext4-caibx', 'vfat-caibx', 'squashfs-caibx', 'raw-caibx']);

/**
 * A stream check: the image must have exactly the manifest's size and SHA-256, or the stream errors. A large
 * image hashes on a worker thread, beside the squashfs decompression and dm-verity checks on this one.
 */
function checkImage(name: string, size: number | undefined, sha256: string | undefined, file: string): Transform {
  const hash = sha256For(size ?? 0);
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (size !== undefined && seen > size) return cb(new InvalidInputError('rauc-image-size', `image '${name}' is longer than the manifest's size ${size}`, { file }));
      const hashing = hash.update(chunk);
      if (hashing) hashing.then(() => cb(null, chunk), cb);
      else cb(null, chunk);
    },
    flush(cb) {
      if (size !== undefined && seen !== size) return cb(new InvalidInputError('rauc-image-size', `image '${name}' is ${seen} bytes, the manifest says ${size}`, { file }));
      hash.digest().then((got) => {
        if (sha256 !== undefined && got !== sha256) return cb(new InvalidInputError('rauc-image-hash', `image '${name}' has sha256 ${got}, the manifest says ${sha256}: the image was modified`, { file }));
        cb();
      }, cb);
    },
    // A stream abandoned half way (an error, or a consumer that stops) must not leave a worker running.
    destroy(err, cb) {
      hash.dispose?.();
      cb(err);
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

/**
 * The payload of one manifest image: its bytes streamed from the bundle's (verified, decrypted) squashfs or
 * rebuilt from a casync chunk store, checked against the manifest's size and sha256; undefined for images
 * without a file (emptyfs).
 */
export function imagePayload(bundle: Bundle, img: ManifestImage, ctx: { file: string; castr?: string; warnings: string[] }): Payload | undefined {
  const { file, castr, warnings } = ctx;
  const where = `[image.${img.slotClass}${img.variant ? '.' + img.variant : ''}${img.artifact ? '/' + img.artifact : ''}]`;
  if (!img.filename) {
    warnings.push(`${where} has type ${img.type} and no file: nothing to import`);
    return undefined;
  }
  const entry = bundle.files.get(img.filename);
  if (!entry || entry.type !== 'file') throw new InvalidInputError('rauc-image-missing', `manifest ${where} names '${img.filename}', which is not a file in the bundle`, { file });
  let blockHashIndex: string | undefined;
  if (img.adaptive.includes(BLOCK_HASH_INDEX)) {
    const idx = bundle.files.get(`${img.filename}.${BLOCK_HASH_INDEX}`);
    const size = img.size ?? entry.size;
    if (!idx) warnings.push(`${where} is adaptive (block-hash-index) but '${img.filename}.${BLOCK_HASH_INDEX}' is missing`);
    else if (idx.size !== Math.ceil(size / 4096) * 32) warnings.push(`'${idx.path.slice(1)}' is ${idx.size} bytes; ${size} bytes of image need ${Math.ceil(size / 4096) * 32}`);
    else blockHashIndex = idx.path.slice(1);
  }
  const casync = isCasync(img);
  const tree = bundle.tree;
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
      const check = checkImage(img.filename!, img.size, img.sha256, file);
      const source = casync ? casyncContent() : tree.open(entry);
      source.on('error', (e) => check.destroy(e));
      return source.pipe(check);
    },
  };
  const casyncContent = (): Readable => {
    if (!blobIndex) {
      return failing(new InvalidInputError('rauc-casync', `image '${img.filename}' is a casync directory tree (${img.type}); only blob indexes (.caibx) can be reconstructed`, { file: file }));
    }
    if (!castr) {
      const store = `${file.replace(/\.raucb$/, '')}.castr`;
      return failing(
        new EnvironmentError('rauc-casync-store', `image '${img.filename}' is a casync index (${img.type}): its content is in a chunk store, by default '${store}/' next to the bundle; pass --castr <store dir> to rebuild it`, { file: file }),
      );
    }
    const out = new PassThrough();
    readSmall(tree, entry, MAX_INDEX, file)
      .then((buf) => {
        const blob = casyncBlobStream(parseCaibx(buf, `${file} (${img.filename})`), castr, file);
        blob.on('error', (e) => out.destroy(e));
        blob.pipe(out);
      })
      .catch((e: Error) => out.destroy(e));
    return out;
  };
  if (TREE_TYPES.has(img.type)) payload.tree = () => openTempCopy(() => payload.stream(), `${file} (${img.filename})`, { prefix: 'pvmigrate-rauc-' });
  return payload;
}
