import { InvalidInputError } from '../../src/errors.ts';

/** One `manifest` / `manifest-augment` line: the sha256 of a path, and whether the signature covers it. */
export interface ManifestEntry {
  sha256: string;
  augmented: boolean;
  seen: boolean;
}

/**
 * The checksum table of an artifact: `manifest` (signed) and `manifest-augment` (unsigned) merged; each entry is
 * marked when its member or payload file has been hashed, so the end of the read can list what never appeared.
 */
export class Manifest {
  readonly entries = new Map<string, ManifestEntry>();

  constructor(private readonly file: string) {}

  /**
   * sha256sum text: "<64 hex>  <path>\n". As mender-artifact does, a last line without a newline is ignored —
   * the missing entry then surfaces as "not listed" for that file.
   */
  add(text: Buffer, member: string, augmented: boolean): void {
    const lines = text.toString('utf8').split('\n');
    lines.pop(); // the text after the last newline (empty for a well-formed manifest)
    for (const [i, line] of lines.entries()) {
      if (line === '') continue;
      const m = /^([0-9a-fA-F]{64}) {2}(.+)$/.exec(line);
      if (!m) throw new InvalidInputError('mender-manifest', `${member} line ${i + 1} is not "<sha256>  <path>": '${line.slice(0, 80)}'`, { file: this.file });
      const path = m[2];
      if (this.entries.has(path)) throw new InvalidInputError('mender-manifest', `${member} lists '${path}' a second time`, { file: this.file });
      this.entries.set(path, { sha256: m[1].toLowerCase(), augmented, seen: false });
    }
  }

  /** Check `actual` against the listed sum of `path` and mark it seen. */
  check(path: string, actual: string): ManifestEntry {
    const e = this.entries.get(path);
    if (!e) throw new InvalidInputError('mender-unlisted', `'${path}' is not listed in the manifest (checksum missing), so it cannot be verified`, { file: this.file });
    if (e.seen) throw new InvalidInputError('mender-duplicate', `'${path}' appears twice in the artifact`, { file: this.file });
    if (e.sha256 !== actual) {
      throw new InvalidInputError('mender-checksum', `'${path}' fails its manifest checksum: expected ${e.sha256}, content has ${actual} (corrupt or tampered)`, { file: this.file });
    }
    e.seen = true;
    return e;
  }

  has(path: string): boolean {
    return this.entries.has(path);
  }

  /** Every listed path must have been met. */
  assertAllSeen(): void {
    const missing = [...this.entries].filter(([, e]) => !e.seen).map(([p]) => p);
    if (missing.length) {
      throw new InvalidInputError('mender-missing', `files listed in the manifest are not in the artifact: ${missing.join(', ')}`, { file: this.file });
    }
  }
}
