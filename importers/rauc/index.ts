import { basename } from 'node:path';
import type { RandomAccessSource } from '../../src/fs/source.ts';
import type { Artifact, Importer, Payload, SourceMetadata, TrustOptions } from '../types.ts';
import { openBundle, type Bundle } from './bundle.ts';
import { imagePayload } from './payload.ts';
import { looksLikeBundle } from './trailer.ts';

/** RAUC `.raucb` bundles (plain, verity, crypt), detected by the CMS the trailer points at. */
export const importer: Importer = {
  format: 'rauc',
  detect: looksLikeBundle,
  async open(src: RandomAccessSource, trust: TrustOptions): Promise<Artifact> {
    const bundle = await openBundle(src, trust);
    try {
      return new RaucArtifact(src, bundle, trust.castr);
    } catch (err) {
      await bundle.tree.close();
      throw err;
    }
  },
};

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
    castr: string | undefined,
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
    this.payloads = m.images.flatMap((img) => imagePayload(bundle, img, { file: this.file, castr, warnings: this.warnings }) ?? []);
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
