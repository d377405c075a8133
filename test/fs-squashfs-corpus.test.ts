// Squashfs images made elsewhere (the public RAUC bundles of the shared corpus: squashfs + appended CMS).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { test } from 'node:test';
import { PvError } from '../src/errors.ts';
import { FileSource } from '../src/fs/source.ts';
import { openSquashfs } from '../src/fs/squashfs/reader.ts';
import { corpus, corpusSkip, needTool, sh } from './helpers/env.ts';

/** Path → sha256 (undefined for non-files) as our reader sees the image, or the error it stopped with. */
async function ourView(file: string): Promise<Map<string, string | undefined> | PvError> {
  const src = await FileSource.open(file);
  try {
    const out = new Map<string, string | undefined>();
    const tree = await openSquashfs(src);
    for await (const e of tree.walk()) {
      let hash: string | undefined;
      if (e.type === 'file') {
        const h = createHash('sha256');
        for await (const c of tree.open(e)) h.update(c as Buffer);
        hash = h.digest('hex');
      }
      out.set(e.path, hash);
    }
    return out;
  } catch (err) {
    if (err instanceof PvError) return err;
    throw err;
  } finally {
    await src.close();
  }
}

test('corpus RAUC bundles: our reader sees every path and file unsquashfs does, and fails where it fails', { skip: corpusSkip || needTool('unsquashfs') }, async () => {
  const names = (await readdir(corpus('rauc'))).filter((n) => n.endsWith('.raucb')).sort();
  let read = 0;
  let refused = 0;
  for (const name of names) {
    const file = corpus('rauc', name);
    if (spawnSync('head', ['-c4', file]).stdout.toString('latin1') !== 'hsqs') continue; // encrypted payloads
    const paths = sh('unsquashfs', ['-l', '-d', '', file]).split('\n').filter(Boolean).sort();
    const truth = new Map<string, string | null>();
    for (const p of paths) {
      const cat = spawnSync('unsquashfs', ['-cat', file, p.slice(1)], { maxBuffer: 1 << 26 });
      // -cat refuses directories and symlinks; a file it cannot decompress shows as a failure.
      truth.set(p, cat.status === 0 ? createHash('sha256').update(cat.stdout).digest('hex') : /failed to read\/uncompress/.test(cat.stderr.toString()) ? null : 'not-a-file');
    }
    const ours = await ourView(file);
    if ([...truth.values()].includes(null)) {
      // unsquashfs finds corrupt data here (the tampered payload of invalid-sig-bundle): so must we.
      assert.ok(ours instanceof PvError, `${name}: unsquashfs fails on corrupt data but we read it`);
      assert.equal(ours.code, 'squashfs-corrupt');
      refused++;
      continue;
    }
    assert.ok(!(ours instanceof PvError), `${name}: ${ours instanceof PvError ? ours.message : ''}`);
    assert.deepEqual([...ours.keys()].slice(1).sort(), paths, name);
    for (const [path, hash] of ours) if (hash !== undefined) assert.equal(hash, truth.get(path), `${name} ${path}`);
    read++;
  }
  assert.ok(read >= 5 && refused >= 1, `read ${read}, refused ${refused}: the corpus changed`);
});
