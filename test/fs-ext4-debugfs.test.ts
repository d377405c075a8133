// Without root: `pvmigrate ls --json` of images built by mke2fs -d must equal what debugfs reports —
// `ls -p` for names, modes, owners and sizes, `stat` for links, mtimes, devices, fast links and xattr names,
// `dump`/`cat` for file content and slow symlink targets.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, symlink, link, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from './helpers/cli.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';
import type { Listed } from '../src/fs/listing.ts';

const skip = needTool('mke2fs') || needTool('debugfs') || needTool('setfattr');


const TYPE_BITS: Record<number, string> = { 0o01: 'fifo', 0o02: 'chr', 0o04: 'dir', 0o06: 'blk', 0o10: 'file', 0o12: 'symlink', 0o14: 'sock' };

async function buildTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'etc/conf.d'), { recursive: true });
  await mkdir(join(dir, 'usr/share/ünïcødé names'), { recursive: true });
  await mkdir(join(dir, 'empty dir'), { recursive: true });
  await writeFile(join(dir, 'etc/hostname'), 'device\n');
  await link(join(dir, 'etc/hostname'), join(dir, 'etc/conf.d/hostname-hard'));
  await writeFile(join(dir, 'usr/share/ünïcødé names/a file with spaces'), 'spaces\n');
  await writeFile(join(dir, 'setuid'), 'su\n');
  sh('chmod', ['6755', join(dir, 'setuid')]);
  sh('setfattr', ['-n', 'user.origin', '-v', 'pvmigrate', join(dir, 'etc/hostname')]);
  await symlink('etc', join(dir, 'etc-link'));
  await symlink('/usr/share/' + 'deep/'.repeat(30) + 'target', join(dir, 'slow-link'));
  sh('mkfifo', [join(dir, 'fifo')]);
  // A unix socket: a process that exits while listening leaves the socket file behind.
  sh(process.execPath, ['-e', `require('net').createServer().listen(process.argv[1], () => process.exit(0))`, join(dir, 'socket')]);
  await writeFile(join(dir, 'empty'), '');
  await writeFile(join(dir, 'random'), createHash('sha512').update('r').digest().toString('base64').repeat(30000));
  const fh = await open(join(dir, 'sparse'), 'w');
  await fh.write('head', 0);
  await fh.write('tail', 20 * 2 ** 20 - 4);
  await fh.close();
  for (let i = 0; i < 400; i++) await writeFile(join(dir, 'etc/conf.d', `unit-${i}.conf`), `${i}\n`);
}

/** Run a batch of debugfs requests; the output of each follows its "debugfs: <request>" echo line. */
function debugfsBatch(img: string, requests: string[], dir: string): Map<string, string> {
  const cmds = join(dir, 'debugfs-cmds');
  sh('sh', ['-c', 'cat > "$0"', cmds], { input: Buffer.from(requests.join('\n') + '\n') });
  const out = sh('debugfs', ['-f', cmds, img]);
  const map = new Map<string, string>();
  let key: string | undefined;
  for (const line of out.split('\n')) {
    if (line.startsWith('debugfs: ')) {
      key = line.slice(9);
      map.set(key, '');
    } else if (key !== undefined) {
      map.set(key, map.get(key)! + line + '\n');
    }
  }
  return map;
}

const quote = (p: string) => `"${p}"`;

async function truthOf(img: string, dir: string): Promise<Listed[]> {
  // Names, modes, owners and sizes: `ls -p` level by level ("/ino/mode/uid/gid/name/size/").
  const entries: { path: string; mode: number; uid: number; gid: number; size: number }[] = [];
  let level = ['/'];
  entries.push({ path: '/', mode: 0, uid: 0, gid: 0, size: 0 });
  while (level.length > 0) {
    const out = debugfsBatch(img, level.map((d) => `ls -p ${quote(d)}`), dir);
    const next: string[] = [];
    for (const d of level) {
      for (const line of out.get(`ls -p ${quote(d)}`)!.split('\n')) {
        const m = /^\/(\d+)\/(\d+)\/(\d+)\/(\d+)\/(.*)\/(\d*)\/$/.exec(line);
        if (!m || m[1] === '0' || m[5] === '.' || m[5] === '..') continue;
        const path = (d === '/' ? '/' : d + '/') + m[5];
        const mode = parseInt(m[2]!, 8);
        entries.push({ path, mode, uid: Number(m[3]), gid: Number(m[4]), size: Number(m[6] || 0) });
        if (mode >> 12 === 0o04) next.push(path);
      }
    }
    level = next;
  }
  const stats = debugfsBatch(img, entries.map((e) => `stat ${quote(e.path)}`), dir);
  const files = entries.filter((e) => e.mode >> 12 === 0o10);
  const dumps = join(dir, 'dumps');
  await mkdir(dumps, { recursive: true });
  debugfsBatch(img, files.map((e, i) => `dump ${quote(e.path)} ${join(dumps, String(i))}`), dir);
  const out: Listed[] = [];
  for (const e of entries) {
    const st = stats.get(`stat ${quote(e.path)}`)!;
    // `ls -p` lists a directory's children; the root's own mode comes from its stat.
    if (e.path === '/') e.mode = 0o040000 | parseInt(/Mode:\s+(\d+)/.exec(st)![1]!, 8);
    const type = TYPE_BITS[e.mode >> 12]!;
    const l: Listed = {
      path: e.path,
      type,
      mode: (e.mode & 0o7777).toString(8).padStart(4, '0'),
      uid: Number(/User:\s+(\d+)/.exec(st)![1]),
      gid: Number(/Group:\s+(\d+)/.exec(st)![1]),
      size: type === 'file' ? e.size : 0,
      nlink: Number(/Links: (\d+)/.exec(st)![1]),
      mtime: (() => {
        const m = / mtime: 0x([0-9a-f]+)(?::([0-9a-f]+))?/.exec(st)!;
        return (parseInt(m[1]!, 16) | 0) + (m[2] ? (parseInt(m[2], 16) & 3) * 2 ** 32 : 0);
      })(),
    };
    if (type === 'file') {
      // debugfs 1.47 dumps a small inline-data file as all 60 bytes of i_block; the inode size says how many count.
      const dumped = await readFile(join(dumps, String(files.indexOf(e))));
      assert.ok(dumped.length === e.size || (dumped.length === 60 && e.size < 60), `${e.path}: debugfs dumped ${dumped.length} bytes of ${e.size}`);
      l.sha256 = createHash('sha256').update(dumped.subarray(0, e.size)).digest('hex');
    }
    if (type === 'symlink') {
      const fast = /Fast link dest: "(.*)"/.exec(st);
      l.target = fast ? fast[1]! : sh('debugfs', ['-R', `cat ${quote(e.path)}`, img]);
    }
    const dev = /Device major\/minor number: .*\(hex ([0-9a-f]+):([0-9a-f]+)\)/.exec(st);
    if (dev) l.rdev = `${parseInt(dev[1]!, 16)}:${parseInt(dev[2]!, 16)}`;
    const names = [...st.matchAll(/^ {2}([a-z]+\.[^ ]+) \((\d+)\)/gm)].filter((m) => m[1] !== 'system.data');
    if (names.length > 0) l.xattrs = Object.fromEntries(names.map((m) => [m[1]!, m[2]!]).sort(([a], [b]) => (a! < b! ? -1 : 1)));
    out.push(l);
  }
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

for (const [name, args] of [
  ['ext4 4 KiB blocks (extents, metadata_csum)', ['-t', 'ext4', '-b', '4096']],
  ['ext4 1 KiB blocks', ['-t', 'ext4', '-b', '1024']],
  ['ext2 (block maps)', ['-t', 'ext2']],
  ['ext4 inline_data', ['-t', 'ext4', '-O', 'inline_data']],
  ['ext4 bigalloc (16 KiB clusters)', ['-t', 'ext4', '-O', 'bigalloc', '-C', '16384']],
] as const) {
  test(`${name}: ls --json equals debugfs, field for field`, { skip }, async (t) => {
    const dir = await tempDir(t);
    const tree = join(dir, 'tree');
    await buildTree(tree);
    const img = join(dir, 'img');
    sh('mke2fs', ['-q', '-F', ...args, '-d', tree, img, '40M']);
    const truth = await truthOf(img, dir);
    const r = await runCli(['ls', '--json', img]);
    assert.equal(r.code, 0, r.stderr);
    // debugfs shows xattr names and sizes; the values are compared against the kernel in fs-ext4-interop.
    const ours = (JSON.parse(r.stdout) as Listed[]).map((e) =>
      e.xattrs ? { ...e, xattrs: Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, String(Buffer.from(v, 'base64').length)])) } : e,
    );
    assert.deepEqual(ours.map((e) => e.path), truth.map((e) => e.path));
    for (let i = 0; i < ours.length; i++) assert.deepEqual(ours[i], truth[i]);
    assert.ok(ours.some((e) => e.path === '/slow-link' && e.target!.length > 60));
    assert.ok(ours.some((e) => e.path === '/socket' && e.type === 'sock'));
  });
}
