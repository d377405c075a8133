import { createHash } from 'node:crypto';
import { UsageError } from '../../errors.ts';
import type { Entry, FileTree } from '../../fs/file-tree.ts';
import { parseCommandArgs, positionals } from '../args.ts';
import { print, printJson } from '../output.ts';
import type { Listed } from '../../fs/listing.ts';

export const summary = 'list every entry of a filesystem image (ext2/3/4, squashfs, vfat, tar, partitioned disk) with metadata and hashes';
export const usage = 'pvmigrate ls <image> [--partition N] [--json]';

/** Files hashed at once through open() streams, and through a tree's own digest (workers; results are tiny). */
const HASH_WINDOW = 8;
const DIGEST_WINDOW = 512;

async function sha256(tree: FileTree, entry: Entry): Promise<string> {
  if (tree.digest) return tree.digest(entry);
  const h = createHash('sha256');
  for await (const chunk of tree.open(entry)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function listed(e: Entry, hash: string | undefined): Listed {
  const out: Listed = { path: e.path, type: e.type, mode: (e.mode & 0o7777).toString(8).padStart(4, '0'), uid: e.uid, gid: e.gid, size: e.size, nlink: e.nlink, mtime: e.mtime };
  if (hash !== undefined) out.sha256 = hash;
  if (e.target !== undefined) out.target = e.target;
  if (e.rdev) out.rdev = `${e.rdev.major}:${e.rdev.minor}`;
  if (e.xattrs && Object.keys(e.xattrs).length > 0) {
    out.xattrs = Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, v.toString('base64')]));
  }
  return out;
}

const TYPE_CHAR: Record<string, string> = { file: '-', dir: 'd', symlink: 'l', chr: 'c', blk: 'b', fifo: 'p', sock: 's' };

/** `ls -ln`-like: permissions with setuid/setgid/sticky letters, links, ids, size or device, mtime (UTC), path. */
function human(l: Listed): string {
  const m = parseInt(l.mode, 8);
  const rwx = (bits: number, special: boolean, lower: string, upper: string) =>
    (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (special ? (bits & 1 ? lower : upper) : bits & 1 ? 'x' : '-');
  const perms =
    TYPE_CHAR[l.type] +
    rwx((m >> 6) & 7, (m & 0o4000) !== 0, 's', 'S') +
    rwx((m >> 3) & 7, (m & 0o2000) !== 0, 's', 'S') +
    rwx(m & 7, (m & 0o1000) !== 0, 't', 'T');
  // As ls -l: a symlink's size is its target's length, a device shows "major, minor".
  const sizeOrDev = l.rdev ? l.rdev.replace(':', ', ') : String(l.target !== undefined ? Buffer.byteLength(l.target) : l.size);
  const when = new Date(l.mtime * 1000).toISOString().replace('T', ' ').slice(0, 19);
  return `${perms} ${String(l.nlink).padStart(3)} ${String(l.uid).padStart(5)} ${String(l.gid).padStart(5)} ${sizeOrDev.padStart(12)} ${when} ${l.path}${l.target !== undefined ? ` -> ${l.target}` : ''}`;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals: pos } = parseCommandArgs('ls', argv, { partition: { type: 'string' } });
  const [file] = positionals('ls', pos, ['<image>'], usage);
  let partition: number | undefined;
  if (values.partition !== undefined) {
    partition = Number(values.partition);
    if (!/^[1-9][0-9]*$/.test(values.partition)) throw new UsageError(`--partition takes a partition number (1, 2 …), not '${values.partition}'; see pvmigrate ls --help`);
  }
  const { openImageFile } = await import('../../fs/open-image.ts');
  const tree = await openImageFile(file, { partition });
  try {
    const all: Listed[] = [];
    const emit = (l: Listed): void => {
      if (values.json) all.push(l);
      else print(human(l));
    };
    // Several files are hashed at once: most are small, and one at a time the listing waits on each file's
    // first read and decompression in turn. Output keeps the walk order.
    const pending: Promise<Listed>[] = [];
    const window = tree.digest ? DIGEST_WINDOW : HASH_WINDOW;
    for await (const e of tree.walk()) {
      const next = e.type === 'file' ? sha256(tree, e).then((h) => listed(e, h)) : Promise.resolve(listed(e, undefined));
      next.catch(() => undefined); // awaited below, in order; this only keeps a later failure from being "unhandled" meanwhile
      pending.push(next);
      if (pending.length >= window) emit(await pending.shift()!);
    }
    for (const p of pending) emit(await p);
    // The walk is already sorted depth-first by bytewise name; the JSON array is sorted by whole path.
    if (values.json) printJson(all.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path))));
    return 0;
  } finally {
    await tree.close();
  }
}
