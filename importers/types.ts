import type { Readable } from 'node:stream';
import type { RandomAccessSource } from '../src/fs/source.ts';
import type { FileTree } from '../src/fs/file-tree.ts';

export type ArtifactFormat = 'mender' | 'rauc' | 'swupdate';

/**
 * Trust material and selection flags from the command line. Each importer reads the ones of its format
 * and says clearly when a flag it needs is missing.
 */
export interface TrustOptions {
  /** Skip signature verification (the verdict is then null). */
  noVerify?: boolean;
  /** Mender: public key (PEM) for manifest.sig. */
  key?: string;
  /** RAUC: trust anchors (PEM). */
  keyring?: string;
  /** RAUC: private key (PEM) for an encrypted CMS. */
  decryptKey?: string;
  /** RAUC: certificate purpose: smimesign (default), codesign or any. */
  checkPurpose?: string;
  /** RAUC: casync chunk store directory. */
  castr?: string;
  /** RAUC: maximum CMS size in bytes (default 64 KiB). */
  maxSignatureSize?: number;
  /** SWUpdate: CA certificate(s) for CMS. */
  ca?: string;
  /** SWUpdate: RSA public key for PKCS#1 v1.5 / PSS. */
  pubkey?: string;
  /** SWUpdate: certificate purpose: emailProtection (default) or codeSigning. */
  certPurpose?: string;
  /** SWUpdate: AES key file (key + ivt, as swupdate's). */
  aesKey?: string;
  /** SWUpdate: "set,mode". */
  select?: string;
  /** SWUpdate: board name. */
  board?: string;
  /** Treat reported-but-tolerated findings (unknown handler …) as errors. */
  strict?: boolean;
}

export type PayloadKind = 'image' | 'archive' | 'file' | 'script' | 'module' | 'docker-ref';

/** A named blob of an artifact, verified while it is read. */
export interface Payload {
  name: string;
  kind: PayloadKind;
  /** Of the decoded (decrypted, decompressed) content. */
  size: number;
  sha256: string;
  /** The decoded bytes; the stream errors on the first byte that fails verification. */
  stream(): Readable;
  /** When the content is a filesystem or archive the converter can walk. */
  tree?(): Promise<FileTree>;
  /** Format-specific facts for the converter and reports (device, path, slot class, module type …). */
  attributes: Record<string, unknown>;
}

/** What a fleet's artifact says about itself, kept in the revision as source metadata. */
export interface SourceMetadata {
  name?: string;
  version?: string;
  /** Mender device types, RAUC compatible, SWUpdate hardware-compatibility/board. */
  compatible: string[];
  provides?: Record<string, string>;
}

export interface Artifact {
  format: ArtifactFormat;
  file: string;
  signed: boolean;
  /** true = verified with the given trust material; false = verification failed; null = not checked. */
  verified: boolean | null;
  /** Why verification failed, when `verified` is false. */
  verificationError?: string;
  payloads: Payload[];
  source: SourceMetadata;
  /** Findings that do not stop reading (unknown keys, unreferenced members, unknown handlers). */
  warnings: string[];
  /** The `inspect --json` document of this format. */
  toJSON(): unknown;
  /** Human summary for `inspect` without --json. */
  describe(): string;
  close(): Promise<void>;
}

export interface Importer {
  format: ArtifactFormat;
  /** By content, never by file name (RAUC looks at the trailer, the others at the first bytes). */
  detect(src: RandomAccessSource): Promise<boolean>;
  open(src: RandomAccessSource, trust: TrustOptions): Promise<Artifact>;
}
