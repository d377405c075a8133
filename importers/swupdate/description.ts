/**
 * sw-description as swupdate reads it: each key (version, images, bootenv …) looked up independently in
 * software.<board>.<set>.<mode>, software.<set>.<mode>, software.<board>, software; `ref = "#./path"`
 * links followed (at most 10 deep, like swupdate's MAX_LINKS_DEPTH); entries read with the defaults
 * of parser/parser.c. Every board and software collection present is enumerated.
 */
import { InvalidInputError } from '../../src/errors.ts';
import { type ConfigNode, type GroupNode, type Pos } from './config-tree.ts';

export const ROOT = 'software';
const MAX_LINKS_DEPTH = 10;
const MAX_PATH = 20;

/** Keys swupdate looks up with the board/collection fallback; a group holding one is a variant. */
const VARIANT_KEYS = new Set([
  'version', 'description', 'hardware-compatibility', 'images', 'files', 'scripts', 'partitions', 'bootenv', 'uboot',
  'vars', 'embedded-script', 'reboot', 'update-type', 'namespace-for-vars', 'bootloader_transaction_marker',
  'bootloader_state_marker', 'output',
]);

/** Handlers of swupdate's 2026 head; anything else is vendor-specific and reported. */
export const KNOWN_HANDLERS = new Set([
  'raw', 'rawfile', 'rawcopy', 'copy', 'ubivol', 'ubipartition', 'ubiswap', 'flash', 'flash-hamming1', 'archive', 'tar',
  'bootloader', 'uboot', 'lua', 'shellscript', 'preinstall', 'postinstall', 'remote', 'swuforward', 'rdiff_image',
  'rdiff_file', 'delta', 'readback', 'diskpart', 'gptpart', 'gptswap', 'diskformat', 'toggleboot', 'uniqueuuid',
  'emmc_boot', 'emmc_boot_toggle', 'ssblswitch', 'ucfw', 'btrfs', 'btrfs-receive', 'executor', 'dummy',
]);

/** Handlers whose member is not the content itself: the converter cannot materialise them. */
export const NOT_CONVERTIBLE: Record<string, string> = {
  delta: 'a zchunk delta: the member is only the header, the chunks stay on a server and the base image on the device',
  rdiff_image: 'an rdiff (librsync) delta against the image already on the device',
  rdiff_file: 'an rdiff (librsync) delta against the file already on the device',
  swuforward: 'a nested .swu forwarded to another device',
  remote: 'streamed to a remote handler over IPC',
};

export type Section = 'images' | 'files' | 'scripts' | 'partitions';
export type CompressionName = 'zlib' | 'zstd' | 'xz' | 'lz4';

export interface Variant {
  board?: string;
  set?: string;
  mode?: string;
}

export interface Entry {
  section: Section;
  filename?: string;
  type: string;
  name?: string;
  version?: string;
  device?: string;
  volume?: string;
  mtdname?: string;
  path?: string;
  filesystem?: string;
  offset?: string | number;
  data?: string;
  sha256?: string;
  size?: number;
  compressed: CompressionName | false;
  /** false, or the cipher: 'aes-cbc' (true), 'aes-cbc-256', 'aes-ctr-128' … */
  encrypted: string | false;
  ivt?: string;
  aesKey?: string;
  installedDirectly: boolean;
  installIfDifferent: boolean;
  installIfHigher: boolean;
  preserveAttributes: boolean;
  properties: Record<string, string | string[]>;
  hook?: string;
  preinstall?: string;
  postinstall?: string;
  pos: Pos;
}

export interface Resolved {
  variant: Variant;
  version?: string;
  description?: string;
  hardwareCompatibility?: string[];
  reboot?: boolean | string;
  updateType?: string;
  embeddedScript: boolean;
  entries: Entry[];
  bootenv: Record<string, string>;
  vars: Record<string, string>;
}

type Path = string[];

export class Description {
  /** Findings that do not stop reading: type mismatches, unknown handlers, templates. */
  readonly warnings: string[] = [];
  readonly software: GroupNode;

  constructor(readonly root: GroupNode, readonly file: string | undefined) {
    const sw = root.members.get(ROOT);
    if (!sw || sw.type !== 'group') throw new InvalidInputError('sw-description', `sw-description has no '${ROOT}' group at its top level`, { file });
    this.software = sw;
  }

  private at(path: Path): ConfigNode | undefined {
    let node: ConfigNode | undefined = this.root;
    for (const name of path) {
      if (!node || node.type !== 'group') return undefined;
      node = node.members.get(name);
    }
    return node;
  }

  /** swupdate's find_root: the node at path, following a `ref` when it is a group holding one. */
  private findRoot(path: Path, depth = MAX_LINKS_DEPTH): { node: ConfigNode; path: Path } | undefined {
    if (depth <= 1) {
      this.warn(`link chain at ${path.join('.')} is longer than ${MAX_LINKS_DEPTH - 1} (a loop?); swupdate ignores it`);
      return undefined;
    }
    const node = this.at(path);
    if (node?.type === 'group') {
      const ref = node.members.get('ref');
      if (ref?.type === 'string') {
        const target = followRef(path, ref.value);
        if (!target) {
          this.warn(`ref "${ref.value}" at ${ref.pos.line}:${ref.pos.column} is not a valid link ("#./path", "#../path" or "#/absolute/path")`);
          return undefined;
        }
        return this.findRoot(target, depth - 1);
      }
    }
    return node ? { node, path } : undefined;
  }

  /** swupdate's find_node_and_path: the first of the four places that holds `key`. */
  lookup(key: string, v: Variant): { node: ConfigNode; path: Path } | undefined {
    const prefixes: Path[] = [];
    if (v.board && v.set && v.mode) prefixes.push([ROOT, v.board, v.set, v.mode]);
    if (v.set && v.mode) prefixes.push([ROOT, v.set, v.mode]);
    if (v.board) prefixes.push([ROOT, v.board]);
    prefixes.push([ROOT]);
    for (const prefix of prefixes) {
      const base = this.findRoot(prefix);
      if (!base) continue;
      const found = this.findRoot([...base.path, key]);
      if (found) return found;
    }
    return undefined;
  }

  /** Boards and collections present, found by shape: a group holding description keys is a variant. */
  variants(): { boards: string[]; selections: string[] } {
    const isVariant = (path: Path): boolean => {
      const r = this.findRoot(path);
      return r?.node.type === 'group' && [...r.node.members.keys()].some((k) => VARIANT_KEYS.has(k));
    };
    const groupsUnder = (path: Path): string[] => {
      const r = this.findRoot(path);
      if (r?.node.type !== 'group') return [];
      return [...r.node.members].filter(([k, n]) => n.type === 'group' && !VARIANT_KEYS.has(k)).map(([k]) => k);
    };
    const boards: string[] = [];
    const selections: string[] = [];
    const byBoard = new Map<string, string[]>();
    for (const x of groupsUnder([ROOT])) {
      const sub: string[] = [];
      let nested = false;
      for (const y of groupsUnder([ROOT, x])) {
        if (isVariant([ROOT, x, y])) sub.push(`${x},${y}`);
        const deeper = groupsUnder([ROOT, x, y]).filter((z) => isVariant([ROOT, x, y, z]));
        if (deeper.length) {
          nested = true;
          byBoard.set(x, [...(byBoard.get(x) ?? []), ...deeper.map((z) => `${y},${z}`)]);
        }
      }
      if (nested || isVariant([ROOT, x])) boards.push(x);
      else selections.push(...sub);
    }
    for (const list of byBoard.values()) for (const s of list) if (!selections.includes(s)) selections.push(s);
    return { boards, selections };
  }

  resolve(v: Variant): Resolved {
    const str = (key: string): string | undefined => {
      const r = this.lookup(key, v);
      return r ? this.stringOf(r.node, key) : undefined;
    };
    const hw = this.lookup('hardware-compatibility', v);
    let hardwareCompatibility: string[] | undefined;
    if (hw) {
      if (hw.node.type === 'array' || hw.node.type === 'list') {
        hardwareCompatibility = hw.node.items.map((i) => this.stringOf(i, 'hardware-compatibility')).filter((s): s is string => !!s);
      } else this.warn(`hardware-compatibility at ${hw.node.pos.line}:${hw.node.pos.column} is a ${hw.node.type}, expected an array of strings`);
    }
    const rebootNode = this.lookup('reboot', v)?.node;
    const entries: Entry[] = [];
    for (const section of ['partitions', 'images', 'files', 'scripts'] as const) {
      const list = this.lookup(section, v);
      if (list) this.collect(list, (n) => entries.push(this.entry(section, n)), section, MAX_LINKS_DEPTH);
    }
    const pairs = (key: string): Record<string, string> => {
      const out: Record<string, string> = {};
      const list = this.lookup(key, v);
      if (list) {
        this.collect(list, (n) => {
          if (n.type !== 'group') return;
          const name = this.stringOf(n.members.get('name'), 'name');
          if (name === undefined) throw new InvalidInputError('sw-description', `${key} entry at ${n.pos.line}:${n.pos.column} has no name`, { file: this.file });
          out[name] = this.stringOf(n.members.get('value'), 'value') ?? '';
        }, key, MAX_LINKS_DEPTH);
      }
      return out;
    };
    const bootenv = this.lookup('bootenv', v) ? pairs('bootenv') : pairs('uboot');
    return {
      variant: v,
      version: str('version'),
      description: str('description'),
      hardwareCompatibility,
      reboot: rebootNode?.type === 'bool' || rebootNode?.type === 'string' ? rebootNode.value : undefined,
      updateType: str('update-type'),
      embeddedScript: this.lookup('embedded-script', v) !== undefined,
      entries,
      bootenv,
      vars: pairs('vars'),
    };
  }

  /** The elements of a list (or group) setting, with element-level `ref` links expanded in place. */
  private collect(at: { node: ConfigNode; path: Path }, each: (n: ConfigNode) => void, key: string, depth: number): void {
    const { node, path } = at;
    const items = node.type === 'list' || node.type === 'array' ? node.items : node.type === 'group' ? [...node.members.values()] : undefined;
    if (!items) {
      this.warn(`${key} at ${node.pos.line}:${node.pos.column} is a ${node.type}, expected a list; swupdate ignores it`);
      return;
    }
    for (const item of items) {
      const ref = item.type === 'group' ? item.members.get('ref') : undefined;
      if (ref?.type === 'string') {
        const target = followRef(path, ref.value);
        const linked = target && depth > 1 ? this.findRoot(target) : undefined;
        // swupdate's parser_follow_link skips a link that leads nowhere without a word; we say it.
        if (!linked) this.warn(`${key} link "${ref.value}" at ${ref.pos.line}:${ref.pos.column} leads nowhere (or loops); swupdate silently ignores it`);
        else this.collect(linked, each, key, depth - 1);
      } else each(item);
    }
  }

  private entry(section: Section, n: ConfigNode): Entry {
    if (n.type !== 'group') throw new InvalidInputError('sw-description', `${section} element at ${n.pos.line}:${n.pos.column} is a ${n.type}, expected a group`, { file: this.file });
    const m = n.members;
    const s = (k: string) => this.stringOf(m.get(k), k);
    const b = (k: string) => {
      const x = m.get(k);
      if (x === undefined) return false;
      if (x.type === 'bool') return x.value;
      this.warn(`${k} at ${x.pos.line}:${x.pos.column} is a ${x.type}, expected true or false; swupdate ignores it`);
      return false;
    };
    const filename = s('filename');
    const e: Entry = {
      section,
      filename,
      type: '',
      name: s('name'),
      version: s('version'),
      device: s('device'),
      volume: s('volume'),
      mtdname: s('mtdname'),
      path: s('path'),
      filesystem: s('filesystem'),
      data: s('data'),
      compressed: this.compression(m.get('compressed')),
      encrypted: false,
      ivt: s('ivt'),
      aesKey: s('aes-key'),
      installedDirectly: b('installed-directly'),
      installIfDifferent: b('install-if-different'),
      installIfHigher: b('install-if-higher'),
      preserveAttributes: b('preserve-attributes'),
      properties: this.properties(m.get('properties')),
      hook: s('hook'),
      preinstall: s('preinstall'),
      postinstall: s('postinstall'),
      pos: n.pos,
    };
    const offset = m.get('offset');
    if (offset?.type === 'int') e.offset = Number(offset.value);
    else if (offset?.type === 'string') e.offset = offset.value;
    const size = m.get('size');
    if (size?.type === 'int') e.size = Number(size.value);
    const sha = s('sha256');
    if (sha !== undefined) e.sha256 = sha.toLowerCase();
    const enc = m.get('encrypted');
    if (enc?.type === 'bool') e.encrypted = enc.value ? 'aes-cbc' : false;
    else if (enc?.type === 'string') e.encrypted = enc.value;
    const type = s('type');
    e.type = type ?? defaultType(section, e);
    return e;
  }

  private compression(node: ConfigNode | undefined): CompressionName | false {
    if (!node) return false;
    if (node.type === 'bool') return node.value ? 'zlib' : false;
    if (node.type === 'string' && ['zlib', 'zstd', 'xz', 'lz4'].includes(node.value)) return node.value as CompressionName;
    throw new InvalidInputError('sw-description', `compressed at ${node.pos.line}:${node.pos.column}: '${node.type === 'string' ? node.value : node.type}' unknown (zlib, zstd, xz or lz4)`, { file: this.file });
  }

  /** properties: key = "s" or key = ["s1", "s2"]; non-string values are dropped as swupdate does, with a warning. */
  private properties(node: ConfigNode | undefined): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    if (node?.type !== 'group') return out;
    for (const [k, v] of node.members) {
      if (v.type === 'string') out[k] = v.value;
      else if ((v.type === 'array' || v.type === 'list') && v.items.every((i) => i.type === 'string')) out[k] = v.items.map((i) => (i as { value: string }).value);
      else this.warn(`property '${k}' at ${v.pos.line}:${v.pos.column} is not a string; swupdate drops it`);
    }
    return out;
  }

  private stringOf(node: ConfigNode | undefined, key: string): string | undefined {
    if (node === undefined) return undefined;
    if (node.type === 'string') return node.value;
    this.warn(`${key} at ${node.pos.line}:${node.pos.column} is a ${node.type}, expected a string; swupdate ignores it`);
    return undefined;
  }

  private warn(message: string): void {
    if (!this.warnings.includes(message)) this.warnings.push(message);
  }
}

function defaultType(section: Section, e: Entry): string {
  switch (section) {
    case 'images':
      return e.volume ? 'ubivol' : e.device ? 'raw' : '';
    case 'files':
      return 'rawfile';
    case 'scripts':
      return 'lua';
    case 'partitions':
      return 'ubipartition';
  }
}

/**
 * swupdate's set_find_path: "#./x" and "#../x" are relative to the parent of the node holding the ref,
 * "#/a/b" (or "#a/b") is absolute from the root. undefined when the link is malformed.
 */
export function followRef(from: Path, ref: string): Path | undefined {
  if (!ref.startsWith('#') || ref.length < 3) return undefined;
  const tokens = ref.slice(1).split('/').filter((t) => t !== '');
  if (tokens.length === 0) return undefined;
  let out = from.slice(0, -1);
  tokens.forEach((t, i) => {
    if (t === '..') out = out.slice(0, -1);
    else if (t !== '.') out = i === 0 ? [t] : [...out, t];
  });
  if (tokens.filter((t) => t === '..').length > from.length - 1 || out.length === 0 || out.length > MAX_PATH) return undefined;
  return out;
}

/** Build-time placeholders that never belong in a built image (meta-swupdate, swugenerator). */
export function findTemplates(node: ConfigNode, out: string[] = []): string[] {
  if (node.type === 'string') {
    const m = node.value.match(/@@[A-Za-z0-9_-]+@@|\$swupdate_get_[a-z0-9_]+\([^)]*\)/);
    if (m) out.push(`${m[0]} at ${node.pos.line}:${node.pos.column}`);
  } else if (node.type === 'group') {
    for (const [k, v] of node.members) {
      if (k === 'sha256' && v.type === 'string' && v.value.startsWith('@')) out.push(`sha256 = "${v.value}" at ${v.pos.line}:${v.pos.column}`);
      else findTemplates(v, out);
    }
  } else if (node.type === 'list' || node.type === 'array') node.items.forEach((i) => findTemplates(i, out));
  return out;
}

/** Match a hardware revision the way swupdate does: literal string, or POSIX ERE after "#RE:". */
export function hardwareMatches(patterns: string[], revision: string): boolean {
  return patterns.some((p) => (p.startsWith('#RE:') ? new RegExp(p.slice(4)).test(revision) : p === revision));
}
