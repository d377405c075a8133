import { spawn } from 'node:child_process';
import { createReadStream, type Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { resolve } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { EnvironmentError, fromSystemError } from '../errors.ts';
import { compareNames, type Entry, type EntryType, type FileTree } from './file-tree.ts';

export interface DirTreeOptions {
  /**
   * Read extended attributes (default true). Node has no xattr API, so they come from one `getfattr -R`
   * run per tree (Debian package `attr`); without that tool and with this option on, opening fails.
   */
  xattrs?: boolean;
}

/** Linux dev_t split (glibc's gnu_dev_major/minor), done on BigInt so 64-bit values stay exact. */
export function splitDev(rdev: number | bigint): { major: number; minor: number } {
  const d = BigInt(rdev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return { major, minor };
}

function typeOf(st: Stats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'chr';
  if (st.isBlockDevice()) return 'blk';
  if (st.isFIFO()) return 'fifo';
  return 'sock';
}

/** getfattr escapes awkward bytes of a path or name as \ooo (and a backslash as \\). */
function unescapeGetfattr(s: string): string {
  if (!s.includes('\\')) return s;
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && i + 3 < raw.length && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else if (raw[i] === 0x5c && raw[i + 1] === 0x5c) {
      bytes.push(0x5c);
      i += 1;
    } else {
      bytes.push(raw[i]!);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function decodeValue(v: string): Buffer {
  if (v.startsWith('0s')) return Buffer.from(v.slice(2), 'base64');
  if (v.startsWith('0x')) return Buffer.from(v.slice(2), 'hex');
  if (v.startsWith('"') && v.endsWith('"')) return Buffer.from(unescapeGetfattr(v.slice(1, -1)), 'utf8');
  return Buffer.from(v, 'utf8');
}

/** Every xattr under `root`, keyed by tree path ("/" for the root), from a single getfattr run. */
async function readAllXattrs(root: string): Promise<Map<string, Record<string, Buffer>>> {
  const out = new Map<string, Record<string, Buffer>>();
  const child = spawn('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'base64', '--absolute-names', '--', root], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-64_000)));
  const spawned = new Promise<number>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code) => res(code ?? -1));
  });
  const prefix = root === '/' ? '' : root;
  let current: Record<string, Buffer> | undefined;
  try {
    for await (const line of createInterface({ input: child.stdout, crlfDelay: Infinity })) {
      if (line.startsWith('# file: ')) {
        const abs = unescapeGetfattr(line.slice(8));
        const rel = abs === root ? '/' : abs.startsWith(prefix + '/') ? abs.slice(prefix.length) : undefined;
        current = rel === undefined ? undefined : {};
        if (rel !== undefined && current) out.set(rel, current);
      } else if (current && line.length > 0) {
        const eq = line.indexOf('=');
        const name = unescapeGetfattr(eq < 0 ? line : line.slice(0, eq));
        current[name] = eq < 0 ? Buffer.alloc(0) : decodeValue(line.slice(eq + 1));
      }
    }
  } catch (err) {
    child.kill();
    throw err;
  }
  let code: number;
  try {
    code = await spawned;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new EnvironmentError('missing-tool', 'reading extended attributes needs getfattr: apt-get install attr (or open the directory with { xattrs: false })', { file: root });
    }
    throw fromSystemError(err, root);
  }
  // A filesystem without xattr support (EOPNOTSUPP) simply has none.
  const problems = stderr.split('\n').filter((l) => l.trim() !== '' && !l.endsWith('Operation not supported'));
  if (code !== 0 && problems.length > 0) throw new EnvironmentError('xattr-read', `getfattr failed: ${problems[0]}`, { file: root });
  return out;
}

/** A host directory as a FileTree, with owners, modes, devices, link targets, hardlink identity and xattrs. */
export async function openDirTree(path: string, options: DirTreeOptions = {}): Promise<FileTree> {
  const root = resolve(path);
  let rootStat: Stats;
  try {
    rootStat = await lstat(root);
  } catch (err) {
    throw fromSystemError(err, path);
  }
  if (!rootStat.isDirectory()) throw new EnvironmentError('not-directory', 'not a directory', { file: path });
  const xattrs = options.xattrs === false ? new Map<string, Record<string, Buffer>>() : await readAllXattrs(root);
  const hostPath = (p: string): string => (p === '/' ? root : root + p);

  async function entryFor(treePath: string, st: Stats): Promise<Entry> {
    const type = typeOf(st);
    const e: Entry = {
      path: treePath,
      type,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: Math.floor(st.mtimeMs / 1000),
      size: type === 'file' ? st.size : 0,
      nlink: st.nlink,
      inode: st.ino,
    };
    if (type === 'symlink') {
      try {
        e.target = await readlink(hostPath(treePath));
      } catch (err) {
        throw fromSystemError(err, hostPath(treePath));
      }
    }
    if (type === 'chr' || type === 'blk') e.rdev = splitDev(st.rdev);
    const x = xattrs.get(treePath);
    if (x && Object.keys(x).length > 0) e.xattrs = x;
    return e;
  }

  async function* walkDir(treePath: string): AsyncGenerator<Entry> {
    let names: string[];
    try {
      names = await readdir(hostPath(treePath));
    } catch (err) {
      throw fromSystemError(err, hostPath(treePath));
    }
    names.sort(compareNames);
    for (const name of names) {
      const child = treePath === '/' ? `/${name}` : `${treePath}/${name}`;
      let st: Stats;
      try {
        st = await lstat(hostPath(child));
      } catch (err) {
        throw fromSystemError(err, hostPath(child));
      }
      yield await entryFor(child, st);
      if (st.isDirectory()) yield* walkDir(child);
    }
  }

  return {
    async *walk() {
      yield await entryFor('/', rootStat);
      yield* walkDir('/');
    },
    open(entry: Entry): Readable {
      // Errors become typed PvErrors naming the host file, like every other reader's.
      const file = hostPath(entry.path);
      const input = createReadStream(file);
      const out = new PassThrough();
      input.on('error', (err) => out.destroy(fromSystemError(err, file)));
      out.on('close', () => input.destroy());
      return input.pipe(out);
    },
    async close() {},
  };
}
