// Corrupt input must give a typed error or a result — never a hang, a crash or a non-PvError exception.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { PvError } from '../src/errors.ts';
import { BufferSource } from '../src/fs/source.ts';
import { openTar } from '../src/fs/tar/reader.ts';
import { tarStream } from '../src/fs/tar/stream.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';

/** Deterministic pseudo-random numbers, so a failure can be replayed. */
function* random(seed: string): Generator<number> {
  for (let i = 0; ; i++) {
    const d = createHash('sha256').update(`${seed}:${i}`).digest();
    for (let j = 0; j < 32; j += 4) yield d.readUInt32LE(j);
  }
}

async function readAll(buf: Buffer): Promise<void> {
  for await (const { body } of tarStream(Readable.from([buf]), 'fuzz.tar')) for await (const _ of body());
  const tree = await openTar(new BufferSource(buf, 'fuzz.tar'));
  for await (const e of tree.walk()) if (e.type === 'file') for await (const _ of tree.open(e));
  await tree.close();
}

test('500 mutations of a pax/sparse/long-name archive: each read ends with a result or a PvError', { skip: needTool('tar') }, async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'root');
  await mkdir(join(root, 'd'.repeat(120)), { recursive: true });
  await writeFile(join(root, 'd'.repeat(120), 'f'.repeat(130)), 'long');
  await writeFile(join(root, 'small'), 'x'.repeat(700));
  const h = await open(join(root, 'sparse'), 'w');
  await h.write(Buffer.from('data'), 0, 4, 100_000);
  await h.truncate(300_000);
  await h.close();
  const archives = ['pax', 'gnu'].map((format) => {
    const file = join(dir, `${format}.tar`);
    sh('tar', [`--format=${format}`, '--sparse', '-cf', file, '-C', root, '.']);
    return readFileSync(file);
  });
  const rnd = random('tar-fuzz');
  const next = (n: number): number => rnd.next().value! % n;
  let failures = 0;
  for (let i = 0; i < 500; i++) {
    const base = archives[i % 2];
    const b = Buffer.from(base);
    // Mostly inside headers, where the parser's decisions are made.
    for (let k = 1 + next(4); k > 0; k--) {
      const at = next(4) ? next(Math.min(b.length, 4096)) : next(b.length);
      b[at] = next(4) ? next(256) : b[at] ^ (1 << next(8));
    }
    try {
      await readAll(next(8) ? b : b.subarray(0, next(b.length)));
    } catch (err) {
      assert.ok(err instanceof PvError, `mutation ${i}: ${(err as Error)?.stack}`);
      failures++;
    }
  }
  assert.ok(failures > 100, `most mutations are detected (${failures})`);
});
