import { createHash } from 'node:crypto';
import { EnvironmentError, InvalidInputError, UsageError } from '../../src/errors.ts';
import { readNamedFile } from '../../src/util/named-file.ts';
import { CERT_PURPOSES, type CertPurpose } from '../../src/crypto/chain.ts';
import { certInfo, findSignerCert, parseSignedData, verifyCmsSignedData, type CertInfo } from '../../src/crypto/cms.ts';
import { decryptEnvelopedData } from '../../src/crypto/enveloped.ts';
import type { Entry, FileTree } from '../../src/fs/file-tree.ts';
import type { RandomAccessSource } from '../../src/fs/source.ts';
import { openSquashfs } from '../../src/fs/squashfs/reader.ts';
import type { TrustOptions } from '../types.ts';
import { DecryptedSource } from './crypt.ts';
import { parseManifest, type Manifest } from './manifest.ts';
import { readTrailer } from './trailer.ts';
import { openVerity } from './verity.ts';

/**
 * Opening a RAUC bundle the way `rauc info`/`rauc extract` trust it: trailer → (decrypt) → CMS verify →
 * manifest (signed inline, or from the signature-covered squashfs) → for verity/crypt the whole hash tree
 * and every data block → the squashfs of images, read through the verified (and decrypted) source.
 */
export type BundleFormat = 'plain' | 'verity' | 'crypt';

export interface Bundle {
  format: BundleFormat;
  /** The CMS in the trailer was envelopedData (crypt bundle after `rauc encrypt`). */
  encryptedCms: boolean;
  manifest: Manifest;
  /** SHA-256 of the manifest bytes as loaded (RAUC ≥ 1.9 "manifest hash"; identifies a verity bundle). */
  manifestHash: string;
  verified: boolean | null;
  signer?: CertInfo;
  chain: CertInfo[];
  signingTime?: Date;
  /** Files at the top of the bundle's squashfs, by name. */
  files: Map<string, Entry>;
  tree: FileTree;
  warnings: string[];
}

const MAX_MANIFEST = 1 << 20;

function purposeOf(p: string | undefined): CertPurpose {
  if (p === undefined) return 'smimesign';
  const v = p === 'codesign-rauc' ? 'codesign' : p;
  if (!(CERT_PURPOSES as readonly string[]).includes(v)) throw new UsageError(`--check-purpose must be smimesign, codesign or any, not '${p}'`);
  return v as CertPurpose;
}

/** Read a small file of the tree completely, refusing more than `max` bytes. */
export async function readSmall(tree: FileTree, entry: Entry, max: number, file: string): Promise<Buffer> {
  if (entry.size > max) throw new InvalidInputError('rauc-file-too-large', `${entry.path} in the bundle is ${entry.size} bytes, more than the ${max} such a file can plausibly have`, { file });
  const parts: Buffer[] = [];
  for await (const c of tree.open(entry)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export async function openBundle(src: RandomAccessSource, trust: TrustOptions): Promise<Bundle> {
  const file = src.name;
  const purpose = purposeOf(trust.checkPurpose);
  if (!trust.keyring && !trust.noVerify) {
    throw new EnvironmentError('rauc-keyring-needed', 'a keyring is needed to verify a RAUC bundle: pass --keyring <ca.pem> (the CA certificates the device trusts), or --no-verify to read it untrusted', { file });
  }
  const keyring = trust.keyring ? (await readNamedFile(trust.keyring, 'the keyring')).toString('utf8') : undefined;
  const { payload, cms: trailerCms, cmsKind } = await readTrailer(src, trust.maxSignatureSize);
  const warnings: string[] = [];

  let cms = trailerCms;
  const encryptedCms = cmsKind === 'envelopedData';
  if (encryptedCms) {
    if (!trust.decryptKey) {
      throw new EnvironmentError('rauc-decrypt-key-needed', 'encrypted bundle detected (its signature is encrypted to recipients), but no decryption key given: pass --decrypt-key <private-key.pem>', { file });
    }
    const pem = (await readNamedFile(trust.decryptKey, 'the decryption key')).toString('utf8');
    const inner = decryptEnvelopedData({ cms, privateKeyPem: pem, file, keyFile: trust.decryptKey });
    cms = inner.content;
  }

  const sd = parseSignedData(cms, file);
  let verified: boolean | null = null;
  let signer: CertInfo | undefined;
  let chain: CertInfo[] = [];
  let signingTime: Date | undefined;
  if (!trust.noVerify) {
    const r = await verifyCmsSignedData({ cms, detachedContent: sd.content === undefined ? payload : undefined, trustAnchors: keyring!, purpose, file, contentName: sd.content === undefined ? 'payload' : 'signed manifest' });
    verified = true;
    signer = r.signer;
    chain = r.chain;
    signingTime = r.signingTime;
  } else {
    // Unverified: what the signature claims, for display only.
    const c = sd.signers[0] && findSignerCert(sd, sd.signers[0]);
    if (c) signer = certInfo(c);
  }

  let manifest: Manifest | undefined;
  let manifestBytes: Buffer | undefined;
  let fsSource: RandomAccessSource = payload;
  if (sd.content !== undefined) {
    manifestBytes = sd.content;
    manifest = parseManifest(sd.content.toString('utf8'), file);
    if (manifest.bundle.format === 'plain') throw new InvalidInputError('rauc-format', "bundle format 'plain' is not allowed for a manifest inside the signature", { file });
    const { verityHash, veritySalt, veritySize } = manifest.bundle;
    if (!verityHash || !veritySalt || veritySize === undefined) {
      throw new InvalidInputError('rauc-manifest', `${manifest.bundle.format} bundle manifest lacks verity-hash, verity-salt or verity-size`, { file });
    }
    const data = await openVerity(payload, { rootHash: verityHash, salt: veritySalt, treeSize: veritySize });
    // The signature covers only the manifest; every payload block is checked here, before anything is trusted.
    await data.checkAll();
    // Proven blocks are then read directly (as `rauc extract` unsquashfs-es the bundle after its check), saving
    // a second dm-verity pass, when every image will be checked against the signed manifest's size and sha256
    // as it streams: bytes changed after this point can then never pass as an image.
    const imagesChecked = manifest.images.every((i) => !i.filename || (i.sha256 !== undefined && i.size !== undefined));
    const proven = imagesChecked ? data.unchecked() : data;
    fsSource = proven;
    if (manifest.bundle.format === 'crypt') {
      if (!manifest.bundle.cryptKey) throw new InvalidInputError('rauc-manifest', 'crypt bundle manifest has no crypt-key', { file });
      fsSource = new DecryptedSource(proven, Buffer.from(manifest.bundle.cryptKey, 'hex'));
    }
  } else if (encryptedCms) {
    throw new InvalidInputError('rauc-format', 'encrypted bundle signature is detached: only crypt bundles (inline manifest) can be encrypted', { file });
  } else if (payload.size % 4096 !== 0) {
    warnings.push(`payload size ${payload.size} is not a multiple of 4096 (bundle from RAUC ≤ 1.4 or with appended data)`);
  }

  let tree: FileTree;
  try {
    tree = await openSquashfs(fsSource);
  } catch (err) {
    if (err instanceof InvalidInputError && manifest?.bundle.format === 'crypt') {
      throw new InvalidInputError('rauc-crypt', `decrypted payload is not a squashfs (${err.message}): the crypt-key does not fit the payload`, { file, cause: err });
    }
    throw err;
  }
  const files = new Map<string, Entry>();
  try {
    for await (const e of tree.walk()) {
      if (e.path !== '/' && e.path.lastIndexOf('/') === 0) files.set(e.path.slice(1), e);
    }
    if (!manifest) {
      const m = files.get('manifest.raucm');
      if (!m || m.type !== 'file') throw new InvalidInputError('rauc-manifest', 'plain bundle has no manifest.raucm in its payload squashfs', { file });
      manifestBytes = await readSmall(tree, m, MAX_MANIFEST, file);
      manifest = parseManifest(manifestBytes.toString('utf8'), file);
      if (manifest.bundle.format !== 'plain') {
        throw new InvalidInputError('rauc-format', `bundle format '${manifest.bundle.format}' needs its manifest inside the signature, but this bundle's signature is detached`, { file });
      }
    }
  } catch (err) {
    await tree.close();
    throw err;
  }
  for (const u of manifest.unknown) warnings.push(`manifest: unknown ${u.startsWith('[') && !u.includes(' ') ? 'group' : 'key'} ${u} (kept; rauc would reject it)`);
  if (manifest.hooks?.filename) warnings.push(`bundle hooks '${manifest.hooks.filename}' (${manifest.hooks.hooks.join(', ') || 'none enabled'}) have no Pantavisor equivalent`);
  if (manifest.handler?.filename) warnings.push(`custom install handler '${manifest.handler.filename}' has no Pantavisor equivalent`);
  const manifestHash = createHash('sha256').update(manifestBytes!).digest('hex');
  return { format: manifest.bundle.format, encryptedCms, manifest, manifestHash, verified, signer, chain, signingTime, files, tree, warnings };
}
