import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DecryptedSource, sectorIv } from '../importers/rauc/crypt.ts';
import { openVerity, verityLevels } from '../importers/rauc/verity.ts';
import { PvError } from '../src/errors.ts';
import { BufferSource } from '../src/fs/source.ts';
import { corpus, corpusSkip } from './helpers/env.ts';

/** dm-verity and dm-crypt against RAUC's own test vectors (rauc/rauc:test/dummy.*, test/dm.c). */
const ROOT = '3049cbffaa49c6dc12e9cd1dd4604ef5a290e3d13b379c5a50d356e68423de23';
const SALT = '799ea94008bbdc6555d7895d1b647e2abfd213171f0e8b670e1da951406f4691';
const CRYPT_KEY = Buffer.from('761305cf2de9a8ff1708eac74676c606630425b22bb8212e5e2314e3e61e8ab5', 'hex');

test('tree shape: 129 blocks → 2 leaf blocks + 1 top block; 128 blocks → 1 level', () => {
  assert.deepEqual(verityLevels(129), [2, 1]);
  assert.deepEqual(verityLevels(128), [1]);
  assert.deepEqual(verityLevels(128 * 128 + 1), [129, 2, 1]);
});

test('dummy.verity: the tree matches veritysetup\'s root hash and every block reads back verified', { skip: corpusSkip }, async () => {
  const bytes = readFileSync(corpus('rauc', 'dummy.verity'));
  const v = await openVerity(new BufferSource(bytes, 'dummy.verity'), { rootHash: ROOT, salt: SALT, treeSize: 3 * 4096 });
  assert.equal(v.size, 129 * 4096);
  await v.checkAll();
  assert.ok((await v.read(4090, 20)).equals(bytes.subarray(4090, 4110)));
});

test('dummy.verity tampered: a data byte fails on read of its block only; tree and root changes fail at open', { skip: corpusSkip }, async () => {
  const bytes = readFileSync(corpus('rauc', 'dummy.verity'));
  const data = Buffer.from(bytes);
  data[100 * 4096 + 7]! ^= 0x80;
  const v = await openVerity(new BufferSource(data, 'd'), { rootHash: ROOT, salt: SALT, treeSize: 3 * 4096 });
  await v.read(0, 4096 * 100); // blocks before the flip are fine
  await assert.rejects(v.read(100 * 4096 + 4000, 10), (e: PvError) => e.code === 'rauc-verity-data' && /block 100 /.test(e.message));
  await assert.rejects(v.checkAll(), (e: PvError) => e.code === 'rauc-verity-data');

  for (const at of [129 * 4096 + 5, 130 * 4096 + 64, 131 * 4096 + 4095]) {
    const t = Buffer.from(bytes);
    t[at]! ^= 1;
    await assert.rejects(openVerity(new BufferSource(t, 't'), { rootHash: ROOT, salt: SALT, treeSize: 3 * 4096 }), (e: PvError) => e.code === 'rauc-verity', `offset ${at}`);
  }
  await assert.rejects(openVerity(new BufferSource(bytes, 'd'), { rootHash: ROOT.replace('30', '31'), salt: SALT, treeSize: 3 * 4096 }), /does not match the signed root hash/);
  await assert.rejects(openVerity(new BufferSource(bytes, 'd'), { rootHash: ROOT, salt: SALT, treeSize: 2 * 4096 }), /need a 12288-byte hash tree/);
  await assert.rejects(openVerity(new BufferSource(bytes.subarray(0, bytes.length - 100), 'd'), { rootHash: ROOT, salt: SALT, treeSize: 3 * 4096 }), /not a multiple of 4096/);
});

test('dummy.encrypted decrypts to dummy.unencrypted (aes-cbc-plain64, 4096-byte sectors), also at unaligned ranges', { skip: corpusSkip }, async () => {
  const plain = readFileSync(corpus('rauc', 'dummy.unencrypted'));
  const d = new DecryptedSource(new BufferSource(readFileSync(corpus('rauc', 'dummy.encrypted')), 'enc'), CRYPT_KEY);
  assert.ok((await d.read(0, d.size)).equals(plain));
  assert.ok((await d.read(4095, 4098)).equals(plain.subarray(4095, 8193)));
  assert.equal(sectorIv(3).toString('hex'), '18000000000000000000000000000000');
});
