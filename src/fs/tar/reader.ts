import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidInputError, PvError, fromSystemError } from '../../errors.ts';
import { compareNames, type Entry, type FileTree } from '../file-tree.ts';
import { FileSource, type RandomAccessSource } from '../source.ts';
import { expandContent, nextMember, padding, type ByteInput, type TarMember } from './members.ts';

/** ByteInput by positional reads: skipping costs nothing, so indexing a tar reads only its headers. */
class PositionalInput implements ByteInput {
  position = 0;
  constructor(private readonly src: RandomAccessSource) {}
  get name(): string {
    return this.src.name;
  }
  async readExact(n: number): Promise<Buffer | null> {
    if (this.position === this.src.size && n > 0) return null;
    if (this.position + n > this.src.size) {
      throw new InvalidInputError('truncated', `tar archive ends at offset ${this.src.size}, inside a ${n}-byte record at offset ${this.position}`, { file: this.name });
    }
    const b = await this.src.read(this.position, n);
    this.position += n;
    return b;
  }
  async skip(n: number): Promise<void> {
    if (this.position + n > this.src.size) {
      throw new InvalidInputError('truncated', `tar archive ends at offset ${this.src.size} with ${this.position + n - this.src.size} bytes of a member missing`, { file: this.name });
    }
    this.position += n;
  }
}

/** The members of a tar on a random-access source, in archive order, found by reading headers only. */
export async function* scanTar(src: RandomAccessSource): AsyncGenerator<TarMember> {
  const input = new PositionalInput(src);
  const globals = new Map<string, Buffer>();
  for (;;) {
    const m = await nextMember(input, globals);
    if (!m) return;
    await input.skip(m.dataOffset + m.dataSize - input.position + padding(m.dataSize));
    yield m;
  }
}

/** The content of a member of `src` (holes of sparse members expanded). */
export function memberContent(src: RandomAccessSource, m: TarMember): Readable {
  const stored = src.stream(m.dataOffset, m.dataSize);
  if (!m.sparse) return stored;
  return Readable.from(expandContent(m, stored, src.name), { objectMode: false });
}

interface Node {
  entry: Entry;
  /** Where the content lies (a hard link shares its target's member). */
  member?: TarMember;
  children?: Map<string, Node>;
}

const PATH_MAX = 4096;

/** "./a//b/" → "/a/b"; ".." is refused so no entry can sit outside the tree; PATH_MAX bounds the depth. */
function normalise(path: string, file: string): string {
  if (path.length > PATH_MAX) throw new InvalidInputError('tar-path', `member path of ${path.length} bytes exceeds ${PATH_MAX}: '${path.slice(0, 60)}…'`, { file });
  const parts: string[] = [];
  for (const p of path.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw new InvalidInputError('tar-path', `member path '${path}' contains '..'`, { file });
    parts.push(p);
  }
  return '/' + parts.join('/');
}

const TYPE: Record<TarMember['type'], Entry['type']> = {
  file: 'file',
  hardlink: 'file',
  symlink: 'symlink',
  chr: 'chr',
  blk: 'blk',
  dir: 'dir',
  fifo: 'fifo',
};

class TarTree implements FileTree {
  private readonly root: Node;
  private readonly byPath = new Map<string, Node>();
  private readonly nlinks = new Map<number, number>();

  constructor(
    private readonly src: RandomAccessSource,
    private readonly cleanup: () => Promise<void>,
  ) {
    this.root = { entry: this.dirEntry('/', 1), children: new Map() };
    this.byPath.set('/', this.root);
  }

  private dirEntry(path: string, inode: number): Entry {
    return { path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0, nlink: 2, inode };
  }

  private parentOf(path: string, nextInode: () => number): Node {
    const cut = path.lastIndexOf('/');
    const parentPath = cut === 0 ? '/' : path.slice(0, cut);
    let parent = this.byPath.get(parentPath);
    if (!parent) {
      // A member whose directories were not archived: they exist with default metadata.
      parent = { entry: this.dirEntry(parentPath, nextInode()), children: new Map() };
      this.parentOf(parentPath, nextInode).children!.set(parentPath.slice(parentPath.lastIndexOf('/') + 1), parent);
      this.byPath.set(parentPath, parent);
    } else if (!parent.children) {
      throw new InvalidInputError('tar-path', `'${path}' lies under '${parentPath}', which is not a directory`, { file: this.src.name });
    }
    return parent;
  }

  add(m: TarMember, inode: number, nextInode: () => number): void {
    const file = this.src.name;
    const path = normalise(m.path, file);
    let node: Node;
    if (m.type === 'hardlink') {
      const targetPath = normalise(m.linkpath ?? '', file);
      const target = this.byPath.get(targetPath);
      if (!target || target.entry.type === 'dir') {
        throw new InvalidInputError('tar-link', `hard link '${m.path}' points to '${m.linkpath}', which is not an earlier non-directory member`, { file });
      }
      node = { entry: { ...target.entry, path }, member: target.member };
      this.nlinks.set(target.entry.inode, (this.nlinks.get(target.entry.inode) ?? 1) + 1);
    } else {
      const entry: Entry = { path, type: TYPE[m.type], mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime, size: m.type === 'file' ? m.size : 0, nlink: 1, inode };
      if (m.type === 'symlink') entry.target = m.linkpath;
      if (m.type === 'chr' || m.type === 'blk') entry.rdev = { major: m.devmajor, minor: m.devminor };
      if (m.xattrs) entry.xattrs = m.xattrs;
      node = { entry };
      if (m.type === 'file') node.member = m;
      if (m.type === 'dir') {
        const old = this.byPath.get(path);
        // A directory archived again (or after its children) keeps its children and takes the new metadata.
        node.children = old?.children ?? new Map();
        if (path === '/') {
          entry.inode = this.root.entry.inode;
          this.root.entry = entry;
          return;
        }
      }
    }
    if (path === '/') throw new InvalidInputError('tar-path', `member '${m.path}' names the archive root but is not a directory`, { file });
    const parent = this.parentOf(path, nextInode);
    parent.children!.set(path.slice(path.lastIndexOf('/') + 1), node);
    this.byPath.set(path, node);
  }

  async *walk(): AsyncIterable<Entry> {
    const stack: Node[] = [this.root];
    while (stack.length) {
      const n = stack.pop()!;
      const e = { ...n.entry };
      if (n.children) {
        let subdirs = 0;
        for (const c of n.children.values()) if (c.children) subdirs++;
        e.nlink = 2 + subdirs;
        const sorted = [...n.children.entries()].sort((a, b) => compareNames(a[0], b[0]));
        for (let i = sorted.length - 1; i >= 0; i--) stack.push(sorted[i][1]);
      } else {
        e.nlink = this.nlinks.get(e.inode) ?? 1;
      }
      yield e;
    }
  }

  open(entry: Entry): Readable {
    const node = this.byPath.get(entry.path);
    if (!node || node.entry.type !== 'file' || !node.member) {
      throw new InvalidInputError('tar-open', `'${entry.path}' is not a regular file of this archive`, { file: this.src.name });
    }
    return memberContent(this.src, node.member);
  }

  close(): Promise<void> {
    return this.cleanup();
  }
}

/** Index every member of an uncompressed tar on `src` (headers only) into a FileTree. */
async function indexTar(src: RandomAccessSource, cleanup: () => Promise<void>): Promise<FileTree> {
  const tree = new TarTree(src, cleanup);
  let inode = 1;
  const nextInode = (): number => ++inode;
  for await (const m of scanTar(src)) tree.add(m, nextInode(), nextInode);
  return tree;
}

type TarCompression = 'gzip' | 'xz' | 'zstd';

export function compressionOf(head: Buffer): TarCompression | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return undefined;
}

/**
 * A tar archive as a FileTree, walked sorted with hard links sharing an inode. An uncompressed tar is read in
 * place; a gzip / xz / zstd one (detected by magic) is decoded once into a temp file that close() removes.
 */
export async function openTar(src: RandomAccessSource): Promise<FileTree> {
  const kind = compressionOf(await src.read(0, Math.min(6, src.size)));
  if (!kind) return indexTar(src, async () => {});
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-tar-'));
  const remove = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    const tmp = join(dir, 'archive.tar');
    // Loaded on use: the decoders (WASM for xz) are only needed for compressed archives.
    const { DecompressError, decompressStream } = await import('../compression.ts');
    try {
      await pipeline(src.stream(), decompressStream(kind), createWriteStream(tmp));
    } catch (err) {
      if (err instanceof DecompressError) throw new InvalidInputError('tar-compression', err.message, { file: src.name, cause: err });
      throw err instanceof PvError ? err : fromSystemError(err, tmp);
    }
    const plain = await FileSource.open(tmp);
    const named: RandomAccessSource = plain.slice(0, plain.size, `${src.name} (${kind}-decoded)`);
    return await indexTar(named, async () => {
      await plain.close();
      await remove();
    });
  } catch (err) {
    await remove();
    throw err;
  }
}

