// The feature tree (every kind of entry a root filesystem holds) and its truth read back from the
// kernel (lstat, readlink, getfattr, sha256), in the shape of `pvmigrate ls --json`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, lstat, mkdir, open, readdir, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Listed } from '../../src/fs/listing.ts';
import { sh } from './env.ts';

const FIVE_G = 5 * 2 ** 30;
const MANY = 20_000;

/** Entries at the top of the tree that a FAT volume can hold (no owners, links, devices or xattrs). */
export const FAT_SUBSET = ['many', 'sparse-20m', 'ünïcødé dir', 'name with spaces.txt', 'empty', 'emptydir'];

/**
 * Build the tree under `dir` (which must exist): hardlinks, a symlink to a directory, a FIFO, char and block
 * devices, setuid/setgid/sticky, uid/gid 1000, security.capability and user.* xattrs, a 20 MB and a 5 GB
 * sparse file with data at known offsets, UTF-8 and space names, a 20,000-entry directory, empty files and
 * directories. Needs root (mknod, chown, security.* xattrs).
 */
export async function buildFeatureTree(dir: string): Promise<void> {
  for (const d of ['bin', 'etc', 'usr/lib', 'dev', 'run', 'home/user', 'emptydir', 'tmp', 'shared', 'ünïcødé dir/ファイル', 'many']) await mkdir(join(dir, d), { recursive: true });
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n');
  await writeFile(join(dir, 'bin/busybox'), createHash('sha512').update('busybox').digest().toString('hex').repeat(1000));
  await link(join(dir, 'bin/busybox'), join(dir, 'bin/sh'));
  await link(join(dir, 'bin/busybox'), join(dir, 'usr/lib/busybox-hard'));
  await writeFile(join(dir, 'bin/su'), 'setuid\n');
  await writeFile(join(dir, 'bin/sgid'), 'setgid\n');
  sh('chmod', ['4755', join(dir, 'bin/su')]);
  sh('chmod', ['2711', join(dir, 'bin/sgid')]);
  sh('chmod', ['2775', join(dir, 'shared')]);
  sh('chmod', ['1777', join(dir, 'tmp')]);
  await writeFile(join(dir, 'bin/ping'), 'ping\n');
  // cap_net_raw+ep, as setcap writes it (VFS_CAP_REVISION_2).
  sh('setfattr', ['-n', 'security.capability', '-v', '0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=', join(dir, 'bin/ping')]);
  sh('setfattr', ['-n', 'user.comment', '-v', 'hello', join(dir, 'etc/passwd')]);
  sh('setfattr', ['-n', 'user.binary', '-v', '0x00ff10', join(dir, 'etc/passwd')]);
  sh('setfattr', ['-n', 'user.dir', '-v', 'on a directory', join(dir, 'shared')]);
  await symlink('usr/lib', join(dir, 'lib'));
  await symlink('../etc/passwd', join(dir, 'bin/passwd-link'));
  sh('mkfifo', [join(dir, 'run/fifo')]);
  sh('mknod', [join(dir, 'dev/console'), 'c', '5', '1']);
  sh('mknod', [join(dir, 'dev/sda'), 'b', '8', '0']);
  sh('mknod', [join(dir, 'dev/mmcblk0p2'), 'b', '179', '2']);
  await writeFile(join(dir, 'home/user/.profile'), 'export PS1=$\n');
  await mkdir(join(dir, 'home/user/empty'));
  sh('chown', ['-R', '1000:1000', join(dir, 'home/user')]);
  await writeFile(join(dir, 'ünïcødé dir/ファイル/with space.txt'), 'ü\n');
  await writeFile(join(dir, 'name with spaces.txt'), 'spaces\n');
  await writeFile(join(dir, 'empty'), '');
  // Incompressible, so a gzip squashfs of the tree holds more than 8 MiB of data.
  await writeFile(join(dir, 'usr/lib/random.bin'), randomBytes(9 << 20));
  sh('truncate', ['-s', '20M', join(dir, 'sparse-20m')]);
  const small = await open(join(dir, 'sparse-20m'), 'r+');
  await small.write('at the start', 0);
  await small.write(createHash('sha512').update('middle').digest().toString('hex').repeat(2000), 10_000_000);
  await small.write('the end', 20 * 2 ** 20 - 7);
  await small.close();
  sh('truncate', ['-s', String(FIVE_G), join(dir, 'sparse-5g')]);
  const big = await open(join(dir, 'sparse-5g'), 'r+');
  await big.write('at 1 GiB', 2 ** 30);
  await big.write('beyond 4 GiB', 4.5 * 2 ** 30);
  await big.write('the end', FIVE_G - 7);
  await big.close();
  // 8.3-shaped lower-case names, so FAT stores them without long names; every 100th holds a few bytes.
  for (let i = 0; i < MANY; i++) await writeFile(join(dir, 'many', `e${String(i).padStart(5, '0')}.dat`), i % 100 === 0 ? `entry ${i}\n` : '');
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

/** getfattr escapes unusual bytes of a path as \ooo. */
function unescapeOctal(s: string): string {
  const raw = Buffer.from(s, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      out.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else out.push(raw[i]!);
  }
  return Buffer.from(out).toString('utf8');
}

/** Every xattr under `root` as getfattr dumps it (base64 values), keyed by tree path. */
function xattrsUnder(root: string): Map<string, Record<string, string>> {
  const r = spawnSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'base64', '--absolute-names', root], { encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `getfattr failed: ${r.stderr}`);
  const map = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      const p = unescapeOctal(line.slice(8));
      current = {};
      map.set(p === root ? '/' : p.slice(root.length), current);
    } else if (current && line.includes('=')) {
      const at = line.indexOf('=');
      const v = line.slice(at + 1);
      current[line.slice(0, at)] = v.startsWith('0s') ? v.slice(2) : '';
    }
  }
  return map;
}

type Stats = Awaited<ReturnType<typeof lstat>>;
const TYPES: [string, (s: Stats) => boolean][] = [
  ['file', (s) => s.isFile()],
  ['dir', (s) => s.isDirectory()],
  ['symlink', (s) => s.isSymbolicLink()],
  ['chr', (s) => s.isCharacterDevice()],
  ['blk', (s) => s.isBlockDevice()],
  ['fifo', (s) => s.isFIFO()],
  ['sock', (s) => s.isSocket()],
];

function byPath(a: { path: string }, b: { path: string }): number {
  return Buffer.compare(Buffer.from(a.path), Buffer.from(b.path));
}

/**
 * The kernel's view of the tree at `root` (a source directory or a mount) in the shape of `ls --json`:
 * lstat for type, mode, ids, size (files only, as ls reports), nlink, mtime (whole seconds, floored),
 * readlink, rdev split as the kernel's new_decode_dev, getfattr, sha256 of every file. `knownHashes`
 * (tree path → sha256) spares hashing a file twice; `only` limits the root's children; `inodes`, when given,
 * receives each path's inode number.
 */
export async function truthOf(root: string, knownHashes: Map<string, string> = new Map(), only?: string[], inodes?: Map<string, number>): Promise<Listed[]> {
  const xattrs = xattrsUnder(root);
  const listing: Listed[] = [];
  const visit = async (rel: string): Promise<void> => {
    const abs = rel === '/' ? root : root + rel;
    const st = await lstat(abs, { bigint: true });
    const type = TYPES.find(([, is]) => is(st as never))![0];
    const l: Listed = {
      path: rel,
      type,
      mode: (Number(st.mode) & 0o7777).toString(8).padStart(4, '0'),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: type === 'file' ? Number(st.size) : 0,
      nlink: Number(st.nlink),
      mtime: Number(st.mtimeNs / 1_000_000_000n) - (st.mtimeNs < 0n && st.mtimeNs % 1_000_000_000n !== 0n ? 1 : 0),
    };
    if (type === 'file') {
      let h = knownHashes.get(rel);
      if (h === undefined) knownHashes.set(rel, (h = await sha256File(abs)));
      l.sha256 = h;
    }
    if (type === 'symlink') l.target = await readlink(abs);
    if (type === 'chr' || type === 'blk') {
      const d = st.rdev;
      l.rdev = `${Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn))}:${Number((d & 0xffn) | ((d >> 12n) & ~0xffn))}`;
    }
    const x = xattrs.get(rel);
    if (x && Object.keys(x).length > 0) l.xattrs = Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1)));
    listing.push(l);
    inodes?.set(rel, Number(st.ino));
    if (type === 'dir') {
      const names = await readdir(abs);
      for (const name of rel === '/' && only ? names.filter((n) => only.includes(n)) : names) await visit((rel === '/' ? '/' : rel + '/') + name);
    }
  };
  await visit('/');
  return listing.sort(byPath);
}

/**
 * Listings equal entry by entry, every field; a failure names the first differing paths and fields
 * rather than dumping 20,000 entries.
 */
export function assertSameListing(actual: Listed[], expected: Listed[], what: string): void {
  const want = new Map(expected.map((l) => [l.path, l]));
  const got = new Map(actual.map((l) => [l.path, l]));
  const missing = [...want.keys()].filter((p) => !got.has(p));
  const extra = [...got.keys()].filter((p) => !want.has(p));
  assert.deepEqual({ missing: missing.slice(0, 10), extra: extra.slice(0, 10) }, { missing: [], extra: [] }, `${what}: paths differ (${missing.length} missing, ${extra.length} extra)`);
  const diffs: string[] = [];
  for (const [path, w] of want) {
    const g = got.get(path)!;
    for (const k of new Set([...Object.keys(w), ...Object.keys(g)]) as Set<keyof Listed>) {
      if (!isDeepStrictEqual(g[k], w[k])) diffs.push(`${path} ${k}: ls ${JSON.stringify(g[k])}, truth ${JSON.stringify(w[k])}`);
    }
  }
  assert.deepEqual(diffs.slice(0, 20), [], `${what}: ${diffs.length} field(s) differ`);
  assert.deepEqual(actual.map((l) => l.path), [...actual].sort(byPath).map((l) => l.path), `${what}: ls --json is sorted by path`);
}
