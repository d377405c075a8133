import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { importer } from '../importers/rauc/index.ts';
import type { TrustOptions } from '../importers/types.ts';
import { PvError } from '../src/errors.ts';
import { BufferSource } from '../src/fs/source.ts';
import { corpus, corpusSkip } from './helpers/env.ts';

/**
 * Corrupt input ends in a typed error, never a crash, hang or wrong success: every byte of the signature
 * area flipped, and truncation at many lengths, of corpus bundles.
 */
const keyring = corpus('rauc', 'dev-ca.pem');

async function outcome(bytes: Buffer, trust: TrustOptions): Promise<'ok' | string> {
  try {
    const a = await importer.open(new BufferSource(bytes, 'fuzzed.raucb'), trust);
    try {
      for (const p of a.payloads) for await (const _ of p.stream());
    } finally {
      await a.close();
    }
    return 'ok';
  } catch (err) {
    if (!(err instanceof PvError)) throw new Error(`untyped failure: ${(err as Error).stack}`);
    assert.ok(err.exitCode === 1, `${err.code}: ${err.message}`);
    return err.code;
  }
}

for (const [name, extra] of [
  ['good-verity-bundle.raucb', {}],
  ['good-bundle.raucb', {}],
  ['good-crypt-bundle-encrypted.raucb', { decryptKey: corpus('rauc', 'test-only-keys', 'ecc-private-key-000.pem'), maxSignatureSize: 1 << 20 }],
] as const) {
  test(`${name}: every flipped byte of the CMS and trailer is rejected or harmless, with a typed error`, { skip: corpusSkip }, async () => {
    const orig = readFileSync(corpus('rauc', name));
    const cmsLen = Number(orig.readBigUInt64BE(orig.length - 8));
    const from = orig.length - 8 - cmsLen;
    const trust: TrustOptions = { keyring, ...extra };
    const codes = new Map<string, number>();
    // Every byte of a small CMS; a stride through the large encrypted one keeps the test quick.
    const encrypted = 'decryptKey' in extra;
    const step = encrypted ? 13 : 1;
    for (let at = from; at < orig.length; at += step) {
      const b = Buffer.from(orig);
      b[at]! ^= 0x10;
      const o = await outcome(b, trust);
      codes.set(o, (codes.get(o) ?? 0) + 1);
    }
    // Flips that leave verification intact exist only in unsigned, unchecked fields (e.g. the digestAlgorithms set);
    // in the encrypted CMS most bytes belong to the 9 recipients the key does not open, so flips there are harmless.
    if (!encrypted) assert.ok((codes.get('ok') ?? 0) < (orig.length - from) / step / 20, JSON.stringify([...codes]));
  });
}

test('truncation at many lengths: typed errors only', { skip: corpusSkip }, async () => {
  const orig = readFileSync(corpus('rauc', 'good-verity-bundle.raucb'));
  for (let len = 0; len < orig.length; len += 97) {
    const o = await outcome(orig.subarray(0, len), { keyring });
    assert.notEqual(o, 'ok', `length ${len}`);
  }
});
