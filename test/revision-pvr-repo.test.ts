import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { isCanonical } from '../src/revision/canonical-json.ts';
import { initRepo, openRepo } from '../src/revision/pvr-repo.ts';
import { sh, tempDir } from './helpers/env.ts';

function writeTree(root: string, files: Record<string, string | Buffer>): void {
  for (const [k, v] of Object.entries(files)) {
    mkdirSync(join(root, ...k.split('/').slice(0, -1)), { recursive: true });
    writeFileSync(join(root, k), v);
  }
}
const sha256sum = (file: string): string => sh('sha256sum', [file]).split(' ')[0]!;

test('init writes the pvr layout with the empty service-system state', async (t) => {
  const dir = await tempDir(t);
  await initRepo(dir);
  assert.equal(readFileSync(join(dir, '.pvr/json'), 'utf8'), '{"#spec":"pantavisor-service-system@1"}');
  assert.ok(statSync(join(dir, '.pvr/objects')).isDirectory());
  assert.equal(readFileSync(join(dir, '.pvr/config'), 'utf8'), '{}');
  await assert.rejects(initRepo(dir), /already exists/);
  await assert.rejects(openRepo(join(dir, 'nope')), /not a pvr repository/);
});

test('commitTree: *.json inline, everything else an object named by sha256sum; checkout restores it', async (t) => {
  const dir = await tempDir(t);
  const repo = await initRepo(dir);
  writeTree(dir, {
    'bsp/run.json': '{ "linux": "kernel.img", "initrd": "pantavisor",\n  "addons": [] }\n',
    'bsp/kernel.img': Buffer.from([0, 1, 2, 3, 255]),
    'bsp/pantavisor': 'initrd bytes',
    'app/run.json': '{"name":"app","type":"lxc","ratio":0.5}',
    'app/root.squashfs': 'squash',
    'README.md': '# hi\n',
  });
  const state = await repo.commitTree();
  assert.deepEqual(Object.keys(state).sort(), ['#spec', 'README.md', 'app/root.squashfs', 'app/run.json', 'bsp/kernel.img', 'bsp/pantavisor', 'bsp/run.json']);
  assert.equal(state['bsp/kernel.img'], sha256sum(join(dir, 'bsp/kernel.img')));
  assert.equal(state['README.md'], sha256sum(join(dir, 'README.md')));
  const stored = readFileSync(join(dir, '.pvr/json'), 'utf8');
  assert.ok(isCanonical(stored));
  assert.match(stored, /"app\/run.json":\{"name":"app","ratio":5.0E-1,"type":"lxc"\}/);
  assert.deepEqual(readdirSync(join(dir, '.pvr/objects')).sort(), [state['bsp/kernel.img'], state['bsp/pantavisor'], state['app/root.squashfs'], state['README.md']].sort());

  const out = await tempDir(t);
  await repo.checkout(out);
  assert.deepEqual(readFileSync(join(out, 'bsp/kernel.img')), Buffer.from([0, 1, 2, 3, 255]));
  assert.equal(readFileSync(join(out, 'app/run.json'), 'utf8'), '{"name":"app","ratio":5.0E-1,"type":"lxc"}');
  const linked = await tempDir(t);
  await repo.checkout(linked, { hardlink: true });
  assert.equal(statSync(join(linked, 'bsp/pantavisor')).ino, statSync(repo.objects.path(state['bsp/pantavisor'] as string)).ino);
});

test('a key kept as a raw object stays raw on the next commit (pvr add --raw)', async (t) => {
  const dir = await tempDir(t);
  const repo = await initRepo(dir);
  const { sha256 } = await repo.putObject(Readable.from([Buffer.from('{"not":"inlined"}')]));
  await repo.writeState(Object.assign(Object.create(null), { '#spec': 'pantavisor-service-system@1', 'x/raw.json': sha256 }));
  await repo.checkout();
  const state = await repo.commitTree();
  assert.equal(state['x/raw.json'], sha256);
});

test('checkout re-verifies objects: a flipped byte or a missing object aborts with nothing written', async (t) => {
  const dir = await tempDir(t);
  const repo = await initRepo(dir);
  writeTree(dir, { 'a/blob': 'content of the blob' });
  const state = await repo.commitTree();
  const obj = repo.objects.path(state['a/blob'] as string);
  const bytes = readFileSync(obj);
  bytes[0]! ^= 1;
  writeFileSync(obj, bytes);
  const out = await tempDir(t);
  await assert.rejects(repo.checkout(out), /does not hash to its name/);
  assert.equal(existsSync(join(out, 'a/blob')), false);
  assert.deepEqual(readdirSync(join(out, 'a')), [], 'no temp file left');
  sh('rm', [obj]);
  await assert.rejects(repo.checkout(out), /not in the object store/);
});

test('.pvr/config ObjectsDir (absolute, or relative to the repo) is honoured', async (t) => {
  const dir = await tempDir(t);
  const shared = join(dir, 'shared-objects');
  const repo = await initRepo(join(dir, 'r'), { objectsDir: shared });
  assert.equal(JSON.parse(readFileSync(join(dir, 'r/.pvr/config'), 'utf8')).ObjectsDir, shared);
  const { sha256 } = await repo.putObject(Readable.from([Buffer.from('x')]));
  assert.ok(existsSync(join(shared, sha256)));
  writeFileSync(join(dir, 'r/.pvr/config'), '{"ObjectsDir":"../shared-objects"}');
  assert.equal(await (await openRepo(join(dir, 'r'))).objects.has(sha256), true);
});

test('commitTree refuses symlinks and bad inline JSON, naming the file', async (t) => {
  const dir = await tempDir(t);
  const repo = await initRepo(dir);
  writeTree(dir, { 'c/bad.json': '{"a":' });
  await assert.rejects(repo.commitTree(), (e: Error & { file?: string }) => e.file === join(dir, 'c/bad.json') && /invalid JSON/.test(e.message));
  sh('rm', [join(dir, 'c/bad.json')]);
  sh('ln', ['-s', '/etc/passwd', join(dir, 'c/link')]);
  await assert.rejects(repo.commitTree(), /symlink/);
});
