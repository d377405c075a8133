import { Readable } from 'node:stream';
import { InvalidInputError } from '../../errors.ts';
import { CachedReader } from '../disk/cached-reader.ts';
import { readPieces, type Piece } from '../disk/pieces.ts';
import type { Entry, FileTree } from '../file-tree.ts';
import type { RandomAccessSource } from '../source.ts';
import { parseBootSector, type FatGeometry } from './boot-sector.ts';

const ATTR_READ_ONLY = 0x01;
const ATTR_VOLUME_ID = 0x08;
const ATTR_DIRECTORY = 0x10;
const ATTR_LFN = 0x0f;
/** NTRes bits Windows NT and Linux use for all-lowercase 8.3 base name / extension. */
const CASE_LOWER_BASE = 0x08;
const CASE_LOWER_EXT = 0x10;
/** A FAT directory holds at most 65536 entries (the spec's limit), i.e. 2 MiB. */
const MAX_DIR_BYTES = 65536 * 32;
const ROOT_INODE = 1;

/** Code page 437, the OEM character set Linux assumes for 8.3 names (codepage=437), bytes 0x80–0xFF. */
const CP437_HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0';

function cp437(bytes: Buffer): string {
  let s = '';
  for (const b of bytes) s += b < 0x80 ? String.fromCharCode(b) : CP437_HIGH[b - 0x80];
  return s;
}

interface FatNode {
  name: string;
  attr: number;
  firstCluster: number;
  size: number;
  mtime: number;
}

/** FAT date and time (local time, read as UTC as a mount with tz=UTC would) → seconds since the epoch. */
function fatTime(date: number, time: number): number {
  const year = 1980 + (date >> 9);
  const month = Math.max(1, (date >> 5) & 0xf);
  const day = Math.max(1, date & 0x1f);
  return Date.UTC(year, month - 1, day, time >> 11, (time >> 5) & 0x3f, (time & 0x1f) * 2) / 1000;
}

function lfnChecksum(short: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + short[i]!) & 0xff;
  return sum;
}

/**
 * Open a FAT12/16/32 volume as a FileTree, long names included. Metadata follows what a Linux vfat mount
 * with default options as root shows: uid/gid 0, umask 022 so directories and files are 0755 (0555 for a
 * read-only file), directory link counts 2 + subdirectories, the root's mtime 0, other mtimes the
 * entries' write time taken as UTC. Names whose long-name checksum fails fall back to the 8.3 name.
 */
export async function openVfat(src: RandomAccessSource): Promise<FileTree> {
  const geometry = parseBootSector(await src.read(0, Math.min(src.size, 4096)), src.size, src.name);
  return new VfatTree(src, geometry);
}

class VfatTree implements FileTree {
  private readonly fat: CachedReader;
  /** The directory entry behind each file entry the walk yielded, by inode number, for open(). */
  private readonly nodes = new Map<number, FatNode>();

  constructor(
    private readonly src: RandomAccessSource,
    private readonly g: FatGeometry,
  ) {
    this.fat = new CachedReader(src);
  }

  private corrupt(what: string): InvalidInputError {
    return new InvalidInputError('vfat-corrupt', `${what}; the FAT filesystem is corrupt (check it with 'fsck.vfat -n')`, { file: this.src.name });
  }

  private async nextCluster(c: number): Promise<number> {
    const g = this.g;
    if (g.fatType === 32) return (await this.fat.read(g.fatOffset + c * 4, 4)).readUInt32LE(0) & 0x0fffffff;
    if (g.fatType === 16) return (await this.fat.read(g.fatOffset + c * 2, 2)).readUInt16LE(0);
    const v = (await this.fat.read(g.fatOffset + c + (c >> 1), 2)).readUInt16LE(0);
    return c & 1 ? v >> 4 : v & 0xfff;
  }

  private isEnd(c: number): boolean {
    return c >= (this.g.fatType === 32 ? 0x0ffffff8 : this.g.fatType === 16 ? 0xfff8 : 0xff8);
  }

  /**
   * Byte pieces of a cluster chain, contiguous clusters merged, up to `limit` bytes (or the end of the chain
   * when `limit` is undefined). A directory's chain may not be longer than the volume has clusters, and a
   * file's must end exactly at its size, so neither can loop.
   */
  private async *chain(first: number, limit: number | undefined, what: string): AsyncGenerator<Piece> {
    const g = this.g;
    let c = first;
    let left = limit ?? Infinity;
    let run: { at: number; length: number } | undefined;
    for (let steps = 0; left > 0; steps++) {
      if (c < 2 || c >= g.clusterLimit || steps >= g.clusterLimit) {
        if (limit === undefined && this.isEnd(c) && steps > 0) break;
        throw this.corrupt(`${what}: its cluster chain ${steps >= g.clusterLimit ? 'loops' : `reaches invalid cluster ${c}`}`);
      }
      const at = g.dataOffset + (c - 2) * g.clusterSize;
      const n = Math.min(g.clusterSize, left);
      if (run && run.at + run.length === at) run.length += n;
      else {
        if (run) yield run;
        run = { at, length: n };
      }
      left -= n;
      if (limit === undefined && run.length > MAX_DIR_BYTES) throw this.corrupt(`${what}: the directory is larger than FAT allows`);
      c = await this.nextCluster(c);
    }
    // A file's chain must end where its size does; anything else is a loop or a cross-link.
    if (limit !== undefined && !this.isEnd(c)) throw this.corrupt(`${what}: its cluster chain runs past the file's ${limit} bytes (it loops or is cross-linked)`);
    if (run) yield run;
  }

  private async directoryBytes(node: FatNode | undefined): Promise<Buffer> {
    const g = this.g;
    if (!node && g.fatType !== 32) return this.src.read(g.rootDirOffset, g.rootDirBytes);
    const first = node ? node.firstCluster : g.rootCluster;
    const parts: Buffer[] = [];
    let total = 0;
    for await (const b of readPieces(this.src, this.chain(first, undefined, node ? `directory ${node.name}` : 'the root directory'))) {
      total += b.length;
      if (total > MAX_DIR_BYTES) throw this.corrupt('a directory is larger than FAT allows');
      parts.push(b);
    }
    return Buffer.concat(parts);
  }

  private async children(node: FatNode | undefined, path: string): Promise<FatNode[]> {
    const data = await this.directoryBytes(node);
    const out: FatNode[] = [];
    let lfn: { parts: string[]; checksum: number; expect: number } | undefined;
    for (let pos = 0; pos + 32 <= data.length; pos += 32) {
      const e = data.subarray(pos, pos + 32);
      if (e[0] === 0x00) break;
      if (e[0] === 0xe5) {
        lfn = undefined;
        continue;
      }
      const attr = e[11]!;
      if ((attr & 0x3f) === ATTR_LFN) {
        const seq = e[0]! & 0x1f;
        const chars = Buffer.concat([e.subarray(1, 11), e.subarray(14, 26), e.subarray(28, 32)]).toString('utf16le');
        if (e[0]! & 0x40) lfn = { parts: [], checksum: e[13]!, expect: seq };
        if (!lfn || seq !== lfn.expect || e[13] !== lfn.checksum || seq === 0) {
          lfn = undefined;
          continue;
        }
        lfn.parts.unshift(chars);
        lfn.expect = seq - 1;
        continue;
      }
      const long = lfn && lfn.expect === 0 && lfn.checksum === lfnChecksum(e) ? lfn.parts.join('') : undefined;
      lfn = undefined;
      if (attr & ATTR_VOLUME_ID) continue;
      const raw = Buffer.from(e.subarray(0, 11));
      if (raw[0] === 0x05) raw[0] = 0xe5;
      let name: string;
      if (long !== undefined) {
        const end = long.indexOf('\u0000');
        name = end >= 0 ? long.slice(0, end) : long;
      } else {
        let base = cp437(raw.subarray(0, 8)).trimEnd();
        let ext = cp437(raw.subarray(8, 11)).trimEnd();
        if (e[12]! & CASE_LOWER_BASE) base = base.toLowerCase();
        if (e[12]! & CASE_LOWER_EXT) ext = ext.toLowerCase();
        name = ext ? `${base}.${ext}` : base;
      }
      if (name === '.' || name === '..') continue;
      if (name === '' || name.includes('/') || name.includes('\u0000')) throw this.corrupt(`${path}: a directory entry has an invalid name`);
      const firstCluster = (e.readUInt16LE(20) << 16) | e.readUInt16LE(26);
      out.push({
        name,
        attr,
        firstCluster: this.g.fatType === 32 ? firstCluster : e.readUInt16LE(26),
        size: attr & ATTR_DIRECTORY ? 0 : e.readUInt32LE(28),
        mtime: fatTime(e.readUInt16LE(24), e.readUInt16LE(22)),
      });
    }
    const withBytes = out.map((n) => ({ n, key: Buffer.from(n.name) }));
    withBytes.sort((a, b) => Buffer.compare(a.key, b.key));
    return withBytes.map((x) => x.n);
  }

  /** FAT has no inode numbers or hardlinks: entries are numbered in walk order, the root 1. */
  private entry(path: string, node: FatNode | undefined, subdirs: number, inode: number): Entry {
    const isDir = !node || (node.attr & ATTR_DIRECTORY) !== 0;
    const readOnly = node && !isDir && node.attr & ATTR_READ_ONLY;
    return {
      path,
      type: isDir ? 'dir' : 'file',
      mode: readOnly ? 0o555 : 0o755,
      uid: 0,
      gid: 0,
      mtime: node ? node.mtime : 0,
      size: isDir ? 0 : node!.size,
      nlink: isDir ? 2 + subdirs : 1,
      inode,
    };
  }

  async *walk(): AsyncGenerator<Entry> {
    const rootChildren = await this.children(undefined, '/');
    const countDirs = (list: FatNode[]) => list.filter((n) => n.attr & ATTR_DIRECTORY).length;
    let inode = ROOT_INODE;
    yield this.entry('/', undefined, countDirs(rootChildren), inode);
    const seen = new Set<number>();
    const stack: { path: string; children: FatNode[]; next: number }[] = [{ path: '/', children: rootChildren, next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.next >= top.children.length) {
        stack.pop();
        continue;
      }
      const node = top.children[top.next++]!;
      const path = (top.path === '/' ? '/' : top.path + '/') + node.name;
      if (node.attr & ATTR_DIRECTORY) {
        // A subdirectory's first cluster identifies it; meeting one twice means the tree loops.
        if (node.firstCluster === 0 || seen.has(node.firstCluster)) throw this.corrupt(`directory ${path} loops back or has no cluster`);
        seen.add(node.firstCluster);
        const children = await this.children(node, path);
        yield this.entry(path, node, countDirs(children), ++inode);
        stack.push({ path, children, next: 0 });
      } else {
        const e = this.entry(path, node, 0, ++inode);
        this.nodes.set(e.inode, node);
        yield e;
      }
    }
  }

  /** Opens files the walk has yielded (FAT has no inode table to find a file by number). */
  open(entry: Entry): Readable {
    const node = this.nodes.get(entry.inode);
    if (!node || entry.type !== 'file') throw new InvalidInputError('not-a-file', `${entry.path} is not a regular file of this FAT tree`, { file: this.src.name });
    if (node.size === 0) return Readable.from([], { objectMode: false });
    if (node.firstCluster === 0) throw this.corrupt(`${entry.path} has ${node.size} bytes but no clusters`);
    return Readable.from(readPieces(this.src, this.chain(node.firstCluster, node.size, entry.path)), { objectMode: false });
  }

  /** The tree holds no resources of its own: the source belongs to whoever opened it. */
  async close(): Promise<void> {}
}
