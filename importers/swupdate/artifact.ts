/** The SWUpdate Artifact: the `inspect --json` document of issue 6 and the human summary. */
import type { RandomAccessSource } from '../../src/fs/source.ts';
import type { Artifact } from '../types.ts';
import type { Entry } from './description.ts';
import type { SwuImage } from './image.ts';

function payloadJson(e: Entry, p: { size: number; sha256: string; attributes: Record<string, unknown> }) {
  return {
    name: e.filename,
    type: e.type,
    section: e.section,
    device: e.device ?? null,
    path: e.path ?? null,
    size: p.size,
    sha256: p.sha256,
    compressed: e.compressed,
    encrypted: e.encrypted !== false,
    ...(e.encrypted !== false ? { cipher: e.encrypted } : {}),
    storedSize: p.attributes.storedSize,
    storedSha256: e.sha256 ?? null,
    ...(e.volume !== undefined ? { volume: e.volume } : {}),
    ...(e.mtdname !== undefined ? { mtdname: e.mtdname } : {}),
    ...pick(e, ['filesystem', 'offset', 'name', 'version', 'data', 'hook', 'preinstall', 'postinstall', 'ivt']),
    installedDirectly: e.installedDirectly,
    installIfDifferent: e.installIfDifferent,
    installIfHigher: e.installIfHigher,
    preserveAttributes: e.preserveAttributes,
    properties: e.properties,
    ...(p.attributes.imageKind ? { content: p.attributes.imageKind } : {}),
    ...(p.attributes.notConvertible ? { notConvertible: p.attributes.notConvertible } : {}),
  };
}

function pick(e: Entry, keys: (keyof Entry)[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => e[k] !== undefined).map((k) => [k, e[k]]));
}

type SwuDocument = ReturnType<typeof document>;

function document(img: SwuImage) {
  const r = img.resolved;
  const signed = img.signature !== null;
  const verified = img.signature ? img.signature.verified : null;
  const selected = img.variant.set ? `${img.variant.set},${img.variant.mode}` : null;
  const partitions = r.entries.filter((e) => e.section === 'partitions').map((e) => ({ name: e.volume ?? e.name, device: e.device ?? null, size: e.size ?? null }));
  const doc = {
    format: 'swupdate',
    cpioFormat: img.cpioFormat,
    version: r.version ?? null,
    description: r.description ?? null,
    hardwareCompatibility: r.hardwareCompatibility ?? [],
    boards: img.boards,
    board: img.variant.board ?? null,
    selections: img.selections,
    selected,
    signed,
    signature: img.signature ? { type: img.signature.type, verified: img.signature.verified, ...(img.signature.signer ? { signer: img.signature.signer } : {}) } : null,
    verified,
    descriptionFormat: img.descriptionFormat,
    descriptionEncrypted: img.descriptionEncrypted,
    payloads: img.payloads.map(({ entry, payload }) => payloadJson(entry, payload)),
    partitions,
    bootenv: r.bootenv,
    vars: r.vars,
    reboot: r.reboot ?? null,
    embeddedScript: r.embeddedScript,
    unreferenced: img.unreferenced,
    warnings: img.warnings,
  };
  return doc;
}

export function swuArtifact(src: RandomAccessSource, img: SwuImage): Artifact {
  const r = img.resolved;
  const doc = document(img);
  return {
    format: 'swupdate',
    file: src.name,
    signed: doc.signed,
    verified: doc.verified,
    payloads: img.payloads.map((p) => p.payload),
    source: { name: r.description, version: r.version, compatible: [...(img.variant.board ? [img.variant.board] : []), ...(r.hardwareCompatibility ?? [])] },
    warnings: img.warnings,
    toJSON: () => doc,
    describe: () => describe(doc),
    close: () => src.close(),
  };
}

function describe(d: SwuDocument): string {
  const lines: string[] = [];
  const sig = d.signature ? `${d.signature.type}, ${d.signature.verified === true ? 'verified' : 'not checked'}${d.signature.signer ? ` (${d.signature.signer})` : ''}` : 'unsigned';
  lines.push(`SWUpdate image (cpio ${d.cpioFormat}, ${d.descriptionFormat} sw-description${d.descriptionEncrypted ? ', encrypted' : ''}), signature: ${sig}`);
  lines.push(`version ${d.version}${d.description ? ` — ${d.description}` : ''}`);
  if (d.hardwareCompatibility.length) lines.push(`hardware-compatibility: ${d.hardwareCompatibility.join(', ')}`);
  if (d.boards.length) lines.push(`boards: ${d.boards.join(', ')}${d.board ? ` (selected: ${d.board})` : ''}`);
  if (d.selections.length) lines.push(`software collections: ${d.selections.join(' ')}${d.selected ? ` (selected: ${d.selected})` : ' (none selected: use --select SET,MODE)'}`);
  for (const p of d.payloads) {
    const target = p.device ?? p.volume ?? p.mtdname ?? p.path ?? '';
    const flags = [p.compressed ? p.compressed : '', p.encrypted ? 'encrypted' : '', p.notConvertible ? 'not convertible' : ''].filter(Boolean).join(', ');
    lines.push(`  ${p.section.padEnd(7)} ${p.name}  ${p.type}${target ? ` → ${target}` : ''}  ${p.size} bytes  ${p.sha256}${flags ? `  (${flags})` : ''}`);
  }
  for (const p of d.partitions) lines.push(`  partition ${p.name} on ${p.device} size ${p.size}`);
  const env = Object.entries(d.bootenv);
  if (env.length) lines.push(`bootenv: ${env.map(([k, v]) => `${k}=${v}`).join('; ')}`);
  for (const w of d.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}
