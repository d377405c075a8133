import { InvalidInputError } from '../errors.ts';
import type { Entry, FileTree } from '../fs/file-tree.ts';

/** True when `path` is `prefix` or lies below it ("/opt/a" is under "/opt", "/optx" is not). */
export function isUnder(path: string, prefix: string): boolean {
  if (prefix === '/') return path.startsWith('/');
  return path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 0x2f);
}

/** The parent directory of an absolute path ("/" for top-level entries). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/**
 * One walk of a tree kept as metadata (no content), so detectors and the split can look paths up.
 * Entry count is bounded: a corrupt image claiming millions of entries fails clearly instead of eating memory.
 */
export class TreeIndex {
  readonly entries: Entry[] = [];
  private readonly byPath = new Map<string, Entry>();

  private constructor(
    readonly tree: FileTree,
    readonly name: string,
  ) {}

  static readonly MAX_ENTRIES = 4_000_000;

  static async build(tree: FileTree, name: string): Promise<TreeIndex> {
    const index = new TreeIndex(tree, name);
    for await (const entry of tree.walk()) {
      if (index.entries.length >= TreeIndex.MAX_ENTRIES) {
        throw new InvalidInputError('too-many-entries', `more than ${TreeIndex.MAX_ENTRIES} entries: not a plausible root filesystem`, { file: name });
      }
      index.entries.push(entry);
      index.byPath.set(entry.path, entry);
    }
    return index;
  }

  get(path: string): Entry | undefined {
    return this.byPath.get(path);
  }

  has(path: string): boolean {
    return this.byPath.has(path);
  }

  /** Direct children of a directory, in walk order. */
  children(dir: string): Entry[] {
    const out: Entry[] = [];
    for (const e of this.entries) if (e.path !== dir && parentOf(e.path) === dir) out.push(e);
    return out;
  }

  /** Follows symlinks (absolute or relative, inside this tree) to the entry they name; undefined when dangling or looping. */
  resolve(path: string): Entry | undefined {
    let current = path;
    for (let hops = 0; hops < 40; hops++) {
      const parts = current.split('/').filter(Boolean);
      let resolved = '';
      let entry: Entry | undefined = this.byPath.get('/');
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i]!;
        if (part === '.') continue;
        if (part === '..') {
          resolved = parentOf(resolved || '/') === '/' ? '' : parentOf(resolved);
          entry = this.byPath.get(resolved || '/');
          continue;
        }
        resolved = `${resolved}/${part}`;
        entry = this.byPath.get(resolved);
        if (!entry) return undefined;
        if (entry.type === 'symlink' && entry.target !== undefined) {
          const rest = parts.slice(i + 1).join('/');
          const base = entry.target.startsWith('/') ? entry.target : `${parentOf(resolved)}/${entry.target}`;
          current = rest ? `${base}/${rest}` : base;
          entry = undefined;
          break;
        }
      }
      if (entry) return entry;
    }
    return undefined;
  }

  /** Text content of a small file (unit, init script, inittab); longer files are cut at `max` bytes. */
  async readText(path: string, max = 256 * 1024): Promise<string | undefined> {
    const entry = this.resolve(path);
    if (!entry || entry.type !== 'file') return undefined;
    const chunks: Buffer[] = [];
    let got = 0;
    const stream = this.tree.open(entry);
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= max) {
        stream.destroy();
        break;
      }
    }
    return Buffer.concat(chunks).subarray(0, max).toString('utf8');
  }
}
