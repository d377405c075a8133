import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { buffer } from 'node:stream/consumers';
import { byteSum, checkedMemberStream, cpioFormatOf, readCpioMembers, type CpioMember } from '../src/archive/cpio.ts';
import { InvalidInputError } from '../src/errors.ts';
import { BufferSource, FileSource, type RandomAccessSource } from '../src/fs/source.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';

async function members(src: RandomAccessSource): Promise<CpioMember[]> {
  const out: CpioMember[] = [];
  for await (const m of readCpioMembers(src)) out.push(m);
  return out;
}

/** Files of awkward sizes (0, 1, 3, 4, 5, odd names) so every alignment case occurs. */
async function makeTree(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const sizes = [0, 1, 2, 3, 4, 5, 511, 512, 513, 70_001];
  for (const [i, n] of sizes.entries()) {
    const name = `f${'x'.repeat(i)}.bin`;
    const data = randomBytes(n);
    files.set(name, data);
    await writeFile(join(dir, name), data);
  }
  return files;
}

for (const format of ['crc', 'newc'] as const) {
  test(`cpio ${format}: members, offsets and byte sums agree with GNU cpio`, { skip: needTool('cpio') }, async (t) => {
    const dir = await tempDir(t);
    const files = await makeTree(dir);
    const archive = join(dir, 'a.cpio');
    sh('sh', ['-c', `ls | grep -v a.cpio | cpio -o -H ${format} > a.cpio 2>/dev/null`], { cwd: dir });
    const src = await FileSource.open(archive);
    t.after(() => src.close());
    const got = await members(src);
    // GNU cpio's own listing is the independent truth for names and sizes.
    const listing = sh('sh', ['-c', `cpio -itv < a.cpio 2>/dev/null`], { cwd: dir }).trim().split('\n');
    assert.deepEqual(got.map((m) => m.name), listing.map((l) => l.split(/\s+/).at(-1)));
    assert.equal(cpioFormatOf(await src.read(0, 6)), format);
    for (const m of got) {
      const expect = files.get(m.name)!;
      assert.equal(m.format, format);
      assert.equal(m.size, expect.length);
      assert.equal(m.dataOffset % 4, 0);
      // crc: c_check must be the byte sum computed the naive way; newc: always 0.
      const naive = expect.reduce((s, b) => (s + b) % 2 ** 32, 0);
      assert.equal(m.check, format === 'crc' ? naive : 0);
      assert.equal(byteSum(expect), naive);
      const data = await buffer(checkedMemberStream(src, m));
      assert.ok(data.equals(expect), `${m.name} data`);
    }
  });
}

test('cpio crc: a flipped data byte fails the byte sum naming the member; newc does not check', { skip: needTool('cpio') }, async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'payload'), Buffer.alloc(1000, 7));
  for (const format of ['crc', 'newc']) {
    sh('sh', ['-c', `echo payload | cpio -o -H ${format} > ${format}.cpio 2>/dev/null`], { cwd: dir });
    const bytes = await readFile(join(dir, `${format}.cpio`));
    const m0 = (await members(new BufferSource(bytes, 'x')))[0];
    bytes[m0.dataOffset + 10] ^= 0xff;
    const src = new BufferSource(bytes, `${format}.cpio`);
    const [m] = await members(src);
    if (format === 'crc') {
      await assert.rejects(buffer(checkedMemberStream(src, m)), (e: InvalidInputError) => e.code === 'cpio-checksum' && /'payload'.*computed 0x[0-9a-f]+, the header says 0x1b58/.test(e.message));
    } else {
      assert.equal((await buffer(checkedMemberStream(src, m))).length, 1000);
    }
  }
});

test('cpio: truncation, bad magic, bad hex and missing trailer are clear errors', { skip: needTool('cpio') }, async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'a'), Buffer.alloc(3000, 1));
  sh('sh', ['-c', 'echo a | cpio -o -H crc > a.cpio 2>/dev/null'], { cwd: dir });
  const whole = await readFile(join(dir, 'a.cpio'));
  const expectErr = async (bytes: Buffer, code: string, re: RegExp) =>
    assert.rejects(members(new BufferSource(bytes, 'a.cpio')), (e: InvalidInputError) => e.code === code && re.test(e.message));
  await expectErr(whole.subarray(0, 2000), 'truncated', /'a' declares 3000 bytes/);
  await expectErr(whole.subarray(0, 50), 'truncated', /no header/);
  await expectErr(whole.subarray(0, 3116), 'truncated', /no TRAILER!!!/);
  await expectErr(Buffer.from('[PLACEHOLDER UPDATE FILE - REPLACE THIS FILE WITH YOUR OWN]'.padEnd(200)), 'cpio-magic', /not a cpio archive/);
  const badHex = Buffer.from(whole);
  badHex.write('zz', 56, 'latin1');
  await expectErr(badHex, 'cpio-header', /c_filesize/);
  const badName = Buffer.from(whole);
  badName.write('000fffff', 94, 'latin1');
  await expectErr(badName, 'cpio-header', /name size/);
});

test('cpio: offsets past 4 GiB are computed exactly (members up to 4 GiB)', async () => {
  // A synthetic source: member 'big' of 0xFFFFFFFF bytes, then the trailer; data bytes read as zeros.
  const hdr = (name: string, size: number) => {
    const ns = name.length + 1;
    const fields = [0, 0o100644, 0, 0, 1, 0, size, 0, 0, 0, 0, ns, 0].map((v) => v.toString(16).padStart(8, '0')).join('');
    const h = Buffer.from('070701' + fields + name + '\0', 'latin1');
    return Buffer.concat([h, Buffer.alloc((4 - (h.length % 4)) % 4)]);
  };
  const big = 0xffffffff;
  const first = hdr('big', big);
  const trailerAt = first.length + big + 1; // data padded to a multiple of 4
  const trailer = hdr('TRAILER!!!', 0);
  const size = trailerAt + trailer.length;
  const src: RandomAccessSource = {
    name: 'synthetic',
    size,
    location: () => undefined,
    async read(pos, len) {
      const out = Buffer.alloc(len);
      for (const [at, part] of [[0, first], [trailerAt, trailer]] as const) {
        const from = Math.max(pos, at);
        const to = Math.min(pos + len, at + part.length);
        if (from < to) part.copy(out, from - pos, from - at, to - at);
      }
      return out;
    },
    slice() {
      throw new Error('unused');
    },
    stream() {
      throw new Error('unused');
    },
    async close() {},
  };
  const it = readCpioMembers(src);
  const m = (await it.next()).value as CpioMember;
  assert.equal(m.size, big);
  assert.equal(m.nextOffset, trailerAt);
  const end = await it.next();
  assert.equal(end.done, true);
  assert.deepEqual(end.value, { trailerEnd: size, count: 1 });
});

test('byteSum: wraps modulo 2^32 and matches a naive sum at every alignment', () => {
  const data = randomBytes(100_003);
  for (const off of [0, 1, 2, 3]) {
    const view = data.subarray(off);
    const naive = view.reduce((s, b) => (s + b) % 2 ** 32, 0);
    assert.equal(byteSum(view), naive);
    assert.equal(byteSum(view, 2 ** 32 - 5), (naive + 2 ** 32 - 5) % 2 ** 32);
  }
  // Known value: the bytes 0..255 sum to 32640.
  const ramp = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  assert.equal(byteSum(Buffer.concat(Array(1000).fill(ramp))), 32640 * 1000);
});
