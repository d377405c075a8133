// Corrupt squashfs images end in a typed InvalidInputError: never a hang, a crash or a memory blow-up.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { PvError } from '../src/errors.ts';
import { BufferSource } from '../src/fs/source.ts';
import { openSquashfs } from '../src/fs/squashfs/reader.ts';
import { needTool, sh } from './helpers/env.ts';

/** Walk everything and read every file; resolves to the number of entries. */
async function readAll(image: Buffer): Promise<number> {
  const tree = await openSquashfs(new BufferSource(image, 'corrupt.sqfs'));
  let n = 0;
  for await (const e of tree.walk()) {
    n++;
    if (e.type === 'file') for await (const _ of tree.open(e)) void _;
  }
  return n;
}

/** Either a clean read or an InvalidInputError naming the file, within a time bound. */
async function expectTypedOutcome(image: Buffer, what: string): Promise<'ok' | 'rejected'> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no result after 10 s (hang?)`)), 10_000)));
  try {
    await Promise.race([readAll(image), hang]);
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof PvError, `${what}: untyped error ${(err as Error)?.stack ?? err}`);
    assert.equal(err.exitCode, 1, `${what}: ${err.message}`);
    assert.equal(err.file, 'corrupt.sqfs');
    return 'rejected';
  } finally {
    clearTimeout(timer);
  }
}

const tools = needTool('mksquashfs');

describe('corrupt squashfs images', { skip: tools, timeout: 120_000 }, () => {
  let image: Buffer;
  const byCompressor = new Map<string, Buffer>();
  let uncompressed: Buffer;
  /** The same tree with options that change the data path: BCJ filters, 1 MiB blocks, 4 KiB blocks. */
  const variants = new Map<string, Buffer>();
  let plain: Buffer;
  before(async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-sqfs-corrupt-'));
    try {
      const root = join(dir, 'root');
      await mkdir(join(root, 'a', 'b'), { recursive: true });
      let seed = 7;
      const rnd = Buffer.alloc(300_000).map(() => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed >> 16));
      await writeFile(join(root, 'random'), rnd);
      await writeFile(join(root, 'a', 'text'), 'hello squashfs\n'.repeat(20_000));
      await writeFile(join(root, 'a', 'b', 'small'), 'small\n');
      await symlink('a/b', join(root, 'link'));
      sh('setfattr', ['-n', 'user.k', '-v', 'v', join(root, 'a', 'text')]);
      sh('mksquashfs', [root, join(dir, 'img'), '-quiet', '-no-progress']);
      image = await readFile(join(dir, 'img'));
      for (const comp of ['xz', 'zstd', 'lz4', 'lzo']) {
        sh('mksquashfs', [root, join(dir, comp), '-comp', comp, '-quiet', '-no-progress']);
        byCompressor.set(comp, await readFile(join(dir, comp)));
      }
      for (const [name, opts] of [['xz-bcj', ['-comp', 'xz', '-Xbcj', 'x86,arm']], ['zstd-1m', ['-comp', 'zstd', '-b', '1M']], ['gzip-4k', ['-b', '4K']]] as const) {
        sh('mksquashfs', [root, join(dir, name), ...opts, '-quiet', '-no-progress']);
        variants.set(name, await readFile(join(dir, name)));
      }
      sh('mksquashfs', [root, join(dir, 'raw'), '-noI', '-noD', '-noF', '-noX', '-quiet', '-no-progress']);
      uncompressed = await readFile(join(dir, 'raw'));
      // Uncompressed metadata so the test can patch inodes and listings in place.
      await rm(join(root), { recursive: true });
      await mkdir(join(root, 'd'), { recursive: true });
      sh('mksquashfs', [root, join(dir, 'plain'), '-noI', '-noD', '-noF', '-noX', '-quiet', '-no-progress']);
      plain = await readFile(join(dir, 'plain'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the pristine images read; uncompressed metadata, BCJ filters and other block sizes give the same tree', async () => {
    const view = async (img: Buffer) => {
      const tree = await openSquashfs(new BufferSource(img, 'x.sqfs'));
      const out: string[] = [];
      for await (const e of tree.walk()) {
        const h = createHash('sha256');
        if (e.type === 'file') for await (const c of tree.open(e)) h.update(c as Buffer);
        out.push(JSON.stringify({ ...e, xattrs: e.xattrs && Object.keys(e.xattrs), sha256: h.digest('hex') }));
      }
      return out;
    };
    const compressed = await view(image);
    assert.equal(compressed.length, 7);
    assert.ok(uncompressed.length > image.length);
    assert.deepEqual(await view(uncompressed), compressed);
    for (const [name, img] of variants) assert.deepEqual(await view(img), compressed, name);
    assert.equal(await readAll(plain), 2);
  });

  test('truncated images are rejected', async () => {
    const used = Number(image.readBigUInt64LE(40));
    for (const cut of [0, 50, 95, 96, 200, 4096, Math.floor(used / 2), used - 100, used - 1]) {
      assert.equal(await expectTypedOutcome(image.subarray(0, cut), `cut at ${cut}`), 'rejected', `cut at ${cut}`);
    }
  });

  test('400 single-byte flips: each reads or is rejected with a typed error', async () => {
    const used = Number(image.readBigUInt64LE(40));
    let seed = 42;
    const next = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
    let rejected = 0;
    for (let i = 0; i < 400; i++) {
      const copy = Buffer.from(image);
      // Half the flips land in the metadata (tables after the data), where they matter most.
      const tables = Number(image.readBigUInt64LE(64));
      const at = i % 2 ? next() % used : tables + (next() % (used - tables));
      copy[at] ^= 1 + (next() % 255);
      if ((await expectTypedOutcome(copy, `flip at ${at}`)) === 'rejected') rejected++;
    }
    assert.ok(rejected > 50, `only ${rejected} of 400 flips were detected`);
  });

  test('100 flips per compressor (xz, zstd, lz4, lzo): decoders fail cleanly on corrupt blocks', async () => {
    let seed = 4242;
    const next = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
    for (const [comp, img] of byCompressor) {
      const used = Number(img.readBigUInt64LE(40));
      assert.equal(await readAll(img), 7, `${comp} pristine`);
      for (let i = 0; i < 100; i++) {
        const copy = Buffer.from(img);
        const at = 96 + (next() % (used - 96));
        copy[at] ^= 1 + (next() % 255);
        await expectTypedOutcome(copy, `${comp} flip at ${at}`);
      }
    }
  });

  test('a directory that contains its ancestor is a loop, reported as such', async () => {
    const img = Buffer.from(plain);
    const inodeTable = Number(img.readBigUInt64LE(64));
    const header = img.readUInt16LE(inodeTable);
    assert.ok(header & 0x8000, 'inode table is stored uncompressed');
    // Children are written before their directory: /d's inode first, the root's next (basic dir inodes, 32 bytes).
    const d = inodeTable + 2;
    const root = d + 32;
    assert.equal(img.readUInt16LE(d), 1);
    assert.equal(img.readUInt16LE(root), 1);
    // Point /d's listing at the root's listing: /d/d/d/… would never end.
    img.writeUInt32LE(img.readUInt32LE(root + 16), d + 16);
    img.writeUInt16LE(img.readUInt16LE(root + 24), d + 24);
    img.writeUInt16LE(img.readUInt16LE(root + 26), d + 26);
    await assert.rejects(readAll(img), /directory loop at \/d\/d/);
  });

  test('absurd sizes and counts are rejected before anything is allocated', async () => {
    const huge = Buffer.from(plain);
    const d = Number(huge.readBigUInt64LE(64)) + 2;
    // Turn /d into a regular file of 4 GiB without a fragment: 32768 block pointers the table cannot hold.
    huge.writeUInt16LE(2, d);
    huge.writeUInt32LE(0xffffffff, d + 20);
    huge.writeUInt32LE(0xffffffff, d + 28);
    assert.equal(await expectTypedOutcome(huge, 'huge file'), 'rejected');
    const frags = Buffer.from(image);
    frags.writeUInt32LE(0xfffffff0, 16);
    await assert.rejects(readAll(frags), /absurd fragment count/);
    const noIds = Buffer.from(image);
    noIds.writeUInt16LE(0, 26);
    await assert.rejects(readAll(noIds), /id table is empty/);
    const block = Buffer.from(image);
    block.writeUInt32LE(1 << 30, 12);
    await assert.rejects(readAll(block), /bad block size/);
  });

  test('a file that is not squashfs says so', async () => {
    await assert.rejects(openSquashfs(new BufferSource(Buffer.alloc(4096, 7), 'x.bin')), (e: PvError) => e.code === 'not-squashfs' && e.exitCode === 1);
  });
});
