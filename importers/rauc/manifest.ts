import { InvalidInputError } from '../../src/errors.ts';

/**
 * RAUC's manifest.raucm: a GLib key file (INI with `;` lists and `\n \s \t \\` escapes). RAUC itself is
 * strict; we are lenient: unknown groups and keys are kept and reported so a converter can see them.
 */
export type KeyFile = Map<string, Map<string, string>>;

const MAX_MANIFEST = 1 << 20;

/** Parse GKeyFile text into groups of raw (unescaped) values, in file order. */
export function parseKeyFile(text: string, file?: string): KeyFile {
  if (text.length > MAX_MANIFEST) throw new InvalidInputError('rauc-manifest', `manifest is ${text.length} bytes, more than the ${MAX_MANIFEST} a manifest can plausibly have`, { file });
  const groups: KeyFile = new Map();
  let cur: Map<string, string> | undefined;
  text.split(/\r?\n/).forEach((line, idx) => {
    const l = line.replace(/^[ \t]+/, '');
    if (l === '' || l.startsWith('#')) return;
    if (l.startsWith('[')) {
      const end = l.indexOf(']');
      if (end < 0) throw new InvalidInputError('rauc-manifest', `manifest line ${idx + 1}: group header '${line}' has no closing ']'`, { file });
      const name = l.slice(1, end);
      cur = groups.get(name) ?? new Map();
      groups.set(name, cur);
      return;
    }
    const eq = l.indexOf('=');
    if (eq < 0) throw new InvalidInputError('rauc-manifest', `manifest line ${idx + 1}: '${line}' is neither a group, a key=value nor a comment`, { file });
    if (!cur) throw new InvalidInputError('rauc-manifest', `manifest line ${idx + 1}: key '${l.slice(0, eq).trim()}' appears before any [group]`, { file });
    // GLib trims spaces around '=' and keeps the last of repeated keys.
    cur.set(l.slice(0, eq).trim(), l.slice(eq + 1).replace(/^[ \t]+/, ''));
  });
  return groups;
}

/** GLib string unescaping: \s \n \t \r \\ (and a leading \s keeps a space). */
export function unescapeValue(v: string): string {
  return v.replace(/\\(.)/g, (m, c: string) => ({ s: ' ', n: '\n', t: '\t', r: '\r', '\\': '\\' })[c] ?? m);
}

/** GLib list: items separated by ';' (trailing ';' optional), `\;` escapes a separator. */
export function parseList(v: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < v.length; i++) {
    if (v[i] === '\\' && v[i + 1] === ';') {
      cur += ';';
      i++;
    } else if (v[i] === ';') {
      out.push(unescapeValue(cur));
      cur = '';
    } else cur += v[i];
  }
  if (cur.trim() !== '') out.push(unescapeValue(cur));
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

export type ImageType =
  | 'ext4' | 'vfat' | 'ubifs' | 'squashfs' | 'emptyfs' | 'raw' | 'tar' | 'caidx'
  | 'ext4-caibx' | 'vfat-caibx' | 'ubifs-caibx' | 'squashfs-caibx' | 'raw-caibx' | 'catar' | 'unknown';

export interface ManifestImage {
  slotClass: string;
  variant?: string;
  /** Artifact repository images: `[image.<repo>/<artifact>]`. */
  artifact?: string;
  filename?: string;
  sha256?: string;
  size?: number;
  type: ImageType;
  /** True when `type` came from the manifest rather than the file extension. */
  typeExplicit: boolean;
  hooks: string[];
  adaptive: string[];
  convert: string[];
  extra: Record<string, string>;
}

export interface Manifest {
  compatible: string;
  version?: string;
  description?: string;
  build?: string;
  minRaucVersion?: string;
  bundle: {
    format: 'plain' | 'verity' | 'crypt';
    verityHash?: string;
    veritySalt?: string;
    veritySize?: number;
    cryptKey?: string;
  };
  hooks?: { filename?: string; hooks: string[] };
  handler?: { filename?: string; args?: string };
  images: ManifestImage[];
  meta: Record<string, Record<string, string>>;
  /** "[group] key" or "[group]" entries RAUC would not accept; kept for the report. */
  unknown: string[];
}

const KNOWN: Record<string, string[]> = {
  update: ['compatible', 'version', 'description', 'build', 'min-rauc-version'],
  bundle: ['format', 'verity-hash', 'verity-salt', 'verity-size', 'crypt-key'],
  hooks: ['filename', 'hooks'],
  handler: ['filename', 'args'],
};
const IMAGE_KEYS = ['filename', 'sha256', 'size', 'type', 'hooks', 'adaptive', 'convert', 'converted'];

/** Image type as RAUC derives it from the file name when `type=` is absent (rauc/rauc:src/manifest.c). */
export function imageTypeFromName(filename: string): ImageType {
  const f = filename.toLowerCase();
  const rules: [RegExp, ImageType][] = [
    [/\.ext4\.caibx$/, 'ext4-caibx'],
    [/\.vfat\.caibx$/, 'vfat-caibx'],
    [/\.ubifs\.caibx$/, 'ubifs-caibx'],
    [/\.squashfs(-[^.]*)?\.caibx$/, 'squashfs-caibx'],
    [/\.img\.caibx$/, 'raw-caibx'],
    [/\.caibx$/, 'raw-caibx'],
    [/\.caidx$/, 'caidx'],
    [/\.catar$/, 'catar'],
    [/\.ext4$/, 'ext4'],
    [/\.vfat$/, 'vfat'],
    [/\.ubifs$/, 'ubifs'],
    [/\.squashfs(-[^.]*)?$/, 'squashfs'],
    [/\.img$/, 'raw'],
    [/\.(tar(\.[a-z0-9]+)?|tgz|tbz2|txz)$/, 'tar'],
  ];
  return rules.find(([re]) => re.test(f))?.[1] ?? 'unknown';
}

const IMAGE_TYPES = new Set<string>(['ext4', 'vfat', 'ubifs', 'squashfs', 'emptyfs', 'raw', 'tar', 'caidx', 'ext4-caibx', 'vfat-caibx', 'ubifs-caibx', 'squashfs-caibx', 'raw-caibx', 'catar']);

function hex64(v: string | undefined, what: string, file?: string): string | undefined {
  if (v === undefined) return undefined;
  const s = v.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(s)) throw new InvalidInputError('rauc-manifest', `manifest ${what} '${v}' is not 64 hex digits`, { file });
  return s;
}

function sizeOf(v: string | undefined, what: string, file?: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v.trim());
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new InvalidInputError('rauc-manifest', `manifest ${what} '${v}' is not a byte count`, { file });
  return n;
}

/** Interpret a parsed key file as a RAUC manifest. */
export function parseManifest(text: string, file?: string): Manifest {
  const kf = parseKeyFile(text, file);
  const unknown: string[] = [];
  const get = (g: string, k: string): string | undefined => {
    const v = kf.get(g)?.get(k);
    return v === undefined ? undefined : unescapeValue(v);
  };
  const compatible = get('update', 'compatible');
  if (compatible === undefined) throw new InvalidInputError('rauc-manifest', "manifest has no 'compatible' key in [update]: not a valid RAUC manifest", { file });
  const format = get('bundle', 'format') ?? 'plain';
  if (format !== 'plain' && format !== 'verity' && format !== 'crypt') {
    throw new InvalidInputError('rauc-manifest', `manifest [bundle] format '${format}' is unknown (plain, verity or crypt)`, { file });
  }
  const manifest: Manifest = {
    compatible,
    version: get('update', 'version'),
    description: get('update', 'description'),
    build: get('update', 'build'),
    minRaucVersion: get('update', 'min-rauc-version'),
    bundle: {
      format,
      verityHash: hex64(get('bundle', 'verity-hash'), '[bundle] verity-hash', file),
      veritySalt: hex64(get('bundle', 'verity-salt'), '[bundle] verity-salt', file),
      veritySize: sizeOf(get('bundle', 'verity-size'), '[bundle] verity-size', file),
      cryptKey: hex64(get('bundle', 'crypt-key'), '[bundle] crypt-key', file),
    },
    images: [],
    meta: {},
    unknown,
  };
  if (kf.has('hooks')) manifest.hooks = { filename: get('hooks', 'filename'), hooks: parseList(kf.get('hooks')!.get('hooks') ?? '') };
  if (kf.has('handler')) manifest.handler = { filename: get('handler', 'filename'), args: get('handler', 'args') };

  for (const [group, keys] of kf) {
    if (group in KNOWN) {
      for (const k of keys.keys()) if (!KNOWN[group]!.includes(k)) unknown.push(`[${group}] ${k}`);
    } else if (group.startsWith('image.')) {
      manifest.images.push(parseImage(group, keys, unknown, file));
    } else if (group.startsWith('meta.')) {
      manifest.meta[group.slice(5)] = Object.fromEntries([...keys].map(([k, v]) => [k, unescapeValue(v)]));
    } else if (group !== 'rollout') {
      unknown.push(`[${group}]`);
    }
  }
  return manifest;
}

function parseImage(group: string, keys: Map<string, string>, unknown: string[], file?: string): ManifestImage {
  const name = group.slice('image.'.length);
  let slotClass = name;
  let variant: string | undefined;
  let artifact: string | undefined;
  if (name.includes('/')) [slotClass, artifact] = [name.slice(0, name.indexOf('/')), name.slice(name.indexOf('/') + 1)];
  else if (name.includes('.')) [slotClass, variant] = [name.slice(0, name.indexOf('.')), name.slice(name.indexOf('.') + 1)];
  if (!slotClass) throw new InvalidInputError('rauc-manifest', `manifest group [${group}] has no slot class`, { file });
  const v = (k: string): string | undefined => (keys.has(k) ? unescapeValue(keys.get(k)!) : undefined);
  const filename = v('filename');
  if (filename !== undefined && (filename.includes('/') || filename === '' || filename === '..' || filename === '.')) {
    throw new InvalidInputError('rauc-manifest', `manifest [${group}] filename '${filename}' must be a plain file name inside the bundle`, { file });
  }
  const explicit = v('type');
  const type = explicit !== undefined ? (IMAGE_TYPES.has(explicit) ? (explicit as ImageType) : 'unknown') : filename ? imageTypeFromName(filename) : 'unknown';
  if (explicit !== undefined && type === 'unknown') unknown.push(`[${group}] type=${explicit}`);
  if (filename === undefined && type !== 'emptyfs') throw new InvalidInputError('rauc-manifest', `manifest [${group}] has no filename`, { file });
  const extra: Record<string, string> = {};
  for (const [k, val] of keys) {
    if (!IMAGE_KEYS.includes(k)) {
      extra[k] = unescapeValue(val);
      unknown.push(`[${group}] ${k}`);
    }
  }
  return {
    slotClass,
    variant,
    artifact,
    filename,
    sha256: hex64(v('sha256'), `[${group}] sha256`, file),
    size: sizeOf(v('size'), `[${group}] size`, file),
    type,
    typeExplicit: explicit !== undefined,
    hooks: parseList(keys.get('hooks') ?? ''),
    adaptive: parseList(keys.get('adaptive') ?? ''),
    convert: parseList(keys.get('convert') ?? ''),
    extra,
  };
}
