import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { exportRepo, importTarball, readExportIndex } from '../src/revision/export.ts';
import { initRepo, openRepo, type PvrRepo } from '../src/revision/pvr-repo.ts';
import { sh, tempDir } from './helpers/env.ts';

async function sampleRepo(t: TestContext): Promise<{ dir: string; repo: PvrRepo }> {
  const dir = await tempDir(t);
  const repo = await initRepo(join(dir, 'repo'));
  const files: Record<string, string> = {
    'bsp/run.json': '{"linux":"kernel.img","initrd":"pantavisor"}',
    'bsp/kernel.img': 'k'.repeat(5000),
    'bsp/pantavisor': 'initrd',
    'app/run.json': '{"name":"app","type":"lxc"}',
    'app/root.squashfs': 'r'.repeat(1024),
    'app/copy-of-root': 'r'.repeat(1024),
  };
  for (const [k, v] of Object.entries(files)) {
    mkdirSync(join(repo.dir, k, '..'), { recursive: true });
    writeFileSync(join(repo.dir, k), v);
  }
  await repo.commitTree();
  return { dir, repo };
}

const py = (script: string, cwd: string): string => sh('python3', ['-c', script], { cwd });

test('export: json first, then objects/<sha> sorted, regular files 0644, no directories (GNU tar listing)', async (t) => {
  const { dir, repo } = await sampleRepo(t);
  const out = join(dir, 'rev.tgz');
  const r = await exportRepo(repo, out);
  assert.equal(r.objects, 3, 'the object shared by two keys is exported once');
  const listing = sh('tar', ['-tvzf', out]).trim().split('\n');
  const names = listing.map((l) => l.split(/\s+/).at(-1));
  const objects = (await repo.objects.list()).map((s) => `objects/${s}`);
  assert.deepEqual(names, ['json', ...objects]);
  assert.ok(listing.every((l) => l.startsWith('-rw-r--r--')), listing.join('\n'));
  const x = join(dir, 'x');
  mkdirSync(x);
  sh('tar', ['-xzf', out, '-C', x]);
  assert.deepEqual(readFileSync(join(x, 'json')), readFileSync(join(repo.dir, '.pvr/json')));
  for (const o of objects) assert.equal(sh('sha256sum', [join(x, o)]).split(' ')[0], o.slice(8));
  // Plain tar when the name does not say gzip.
  await exportRepo(repo, join(dir, 'rev.tar'));
  assert.deepEqual(sh('tar', ['-tf', join(dir, 'rev.tar')]).trim().split('\n'), names);
});

test('export → import → export round-trips byte-identically', async (t) => {
  const { dir, repo } = await sampleRepo(t);
  await exportRepo(repo, join(dir, 'a.tgz'));
  const imported = await importTarball(join(dir, 'a.tgz'), join(dir, 'imported'));
  assert.equal(imported.objects, 3);
  assert.deepEqual(readFileSync(join(dir, 'imported/.pvr/json')), readFileSync(join(repo.dir, '.pvr/json')));
  const again = await openRepo(join(dir, 'imported'));
  assert.deepEqual(await again.objects.list(), await repo.objects.list());
  await exportRepo(again, join(dir, 'b.tgz'));
  assert.deepEqual(readFileSync(join(dir, 'b.tgz')), readFileSync(join(dir, 'a.tgz')));
});

test('import accepts a tarball written by GNU tar (directory entry, ./ prefix)', async (t) => {
  const { dir, repo } = await sampleRepo(t);
  const stage = join(dir, 'stage');
  mkdirSync(join(stage, 'objects'), { recursive: true });
  writeFileSync(join(stage, 'json'), readFileSync(join(repo.dir, '.pvr/json')));
  for (const s of await repo.objects.list()) writeFileSync(join(stage, 'objects', s), readFileSync(repo.objects.path(s)));
  sh('tar', ['-czf', join(dir, 'gnu.tar.gz'), '-C', stage, './json', './objects']);
  const r = await importTarball(join(dir, 'gnu.tar.gz'), join(dir, 'from-gnu'));
  assert.equal(r.objects, 3);
});

/** Build a tarball with Python's tarfile (an independent writer that allows hostile names). */
function craft(dir: string, name: string, members: [string, string][]): string {
  const file = join(dir, name);
  py(
    `import tarfile,io,json,sys
members=json.loads(sys.argv[1]) if False else ${JSON.stringify(members)}
with tarfile.open(${JSON.stringify(file)}, 'w:gz') as t:
  for n,c in members:
    b=c.encode(); i=tarfile.TarInfo(n); i.size=len(b); t.addfile(i, io.BytesIO(b))`,
    dir,
  );
  return file;
}

test('import refuses ../x, an extra member, a wrong hash, a missing object; nothing is written', async (t) => {
  const dir = await tempDir(t);
  const json = '{"#spec":"pantavisor-service-system@1","a/b":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}';
  const good: [string, string] = ['objects/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', 'hello'];
  const cases: [string, [string, string][], RegExp][] = [
    ['dotdot.tgz', [['json', json], good, ['../x', 'evil']], /unexpected member '\.\.\/x'/],
    ['abs.tgz', [['json', json], good, ['/etc/x', 'evil']], /unexpected member/],
    ['extra.tgz', [['json', json], good, ['README', 'hi']], /unexpected member 'README'/],
    ['objdotdot.tgz', [['json', json], ['objects/../../x', 'evil'], good], /unexpected member/],
    ['wrong.tgz', [['json', json], ['objects/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', 'hellO']], /hashes to/],
    ['missing.tgz', [['json', json]], /not in the archive/],
    ['nojson.tgz', [good], /no json member/],
    ['unref.tgz', [['json', '{"#spec":"pantavisor-service-system@1"}'], good], /not referenced/],
  ];
  for (const [name, members, why] of cases) {
    const file = craft(dir, name, members);
    const out = join(dir, `out-${name}`);
    await assert.rejects(importTarball(file, out), (e: Error & { exitCode?: number }) => why.test(e.message) && e.exitCode === 1, name);
    assert.equal(existsSync(out), false, name);
  }
  assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.')), [], 'no temp directories left');
  assert.equal(existsSync(join(dir, 'x')), false);
  assert.equal(existsSync('/etc/x'), false);
});

test('import and the export index refuse a json or object that is a link, a directory objects/<sha> or a sparse file', async (t) => {
  const dir = await tempDir(t);
  const sha = '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';
  const json = `{"#spec":"pantavisor-service-system@1","a/b":"${sha}"}`;
  const cases: [string, string, RegExp][] = [
    ['symlink.tgz', `i=tarfile.TarInfo('objects/${sha}'); i.type=tarfile.SYMTYPE; i.linkname='/etc/passwd'; t.addfile(i)`, /is not a regular file \(symlink\)/],
    ['hardlink.tgz', `i=tarfile.TarInfo('objects/${sha}'); i.type=tarfile.LNKTYPE; i.linkname='json'; t.addfile(i)`, /is not a regular file \(hardlink\)/],
    ['objdir.tgz', `i=tarfile.TarInfo('objects/${sha}'); i.type=tarfile.DIRTYPE; t.addfile(i)`, /is not a regular file \(dir\)/],
    ['objectsfile.tgz', `b=b'x'; i=tarfile.TarInfo('objects'); i.size=1; t.addfile(i, io.BytesIO(b))`, /member 'objects' must be a directory/],
  ];
  for (const [name, add, why] of cases) {
    const file = join(dir, name);
    py(`import tarfile,io
with tarfile.open(${JSON.stringify(file)}, 'w:gz') as t:
  b=${JSON.stringify(json)}.encode(); i=tarfile.TarInfo('json'); i.size=len(b); t.addfile(i, io.BytesIO(b))
  ${add}`, dir);
    await assert.rejects(importTarball(file, join(dir, `out-${name}`)), (e: Error & { code?: string }) => e.code === 'tar-member' && why.test(e.message), name);
    await assert.rejects(readExportIndex(file), (e: Error & { code?: string }) => e.code === 'tar-member' && why.test(e.message), name);
    assert.equal(existsSync(join(dir, `out-${name}`)), false, name);
  }
  // GNU tar --sparse stores a file of holes as a sparse member: refused like any non-plain file.
  mkdirSync(join(dir, 'stage/objects'), { recursive: true });
  writeFileSync(join(dir, 'stage/json'), json);
  sh('truncate', ['-s', '1M', join(dir, 'stage/objects', sha)]);
  sh('tar', ['--sparse', '--format=gnu', '-cf', join(dir, 'sparse.tar'), '-C', join(dir, 'stage'), 'json', `objects/${sha}`]);
  await assert.rejects(importTarball(join(dir, 'sparse.tar'), join(dir, 'out-sparse')), /is not a regular file \(sparse\)/);
});

test('import refuses truncated and non-tar input with a clear error', async (t) => {
  const { dir, repo } = await sampleRepo(t);
  await exportRepo(repo, join(dir, 'r.tar'));
  const full = readFileSync(join(dir, 'r.tar'));
  writeFileSync(join(dir, 'cut.tar'), full.subarray(0, 1500));
  await assert.rejects(importTarball(join(dir, 'cut.tar'), join(dir, 'o1')), (e: Error & { code?: string }) => e.code === 'truncated' && /tar archive ends at offset 1500/.test(e.message));
  writeFileSync(join(dir, 'junk.tar'), Buffer.alloc(2048, 0x41));
  await assert.rejects(importTarball(join(dir, 'junk.tar'), join(dir, 'o2')), (e: Error & { code?: string }) => e.code === 'tar-checksum' && /checksum.*not a tar/.test(e.message));
  await assert.rejects(importTarball(join(dir, 'r.tar'), repo.dir), (e: Error & { exitCode?: number }) => e.exitCode === 2);
});

test('import refuses a damaged or truncated gzip tarball as invalid input (exit 1)', async (t) => {
  const { dir, repo } = await sampleRepo(t);
  await exportRepo(repo, join(dir, 'r.tgz'));
  const gz = readFileSync(join(dir, 'r.tgz'));
  const flipped = Buffer.from(gz);
  flipped[Math.floor(gz.length / 2)]! ^= 0xff;
  writeFileSync(join(dir, 'flipped.tgz'), flipped);
  writeFileSync(join(dir, 'short.tgz'), gz.subarray(0, gz.length - 20));
  for (const name of ['flipped.tgz', 'short.tgz']) {
    await assert.rejects(importTarball(join(dir, name), join(dir, `o-${name}`)), (e: Error & { exitCode?: number }) => {
      assert.equal(e.exitCode, 1, `${name}: ${e.message}`);
      return true;
    });
    assert.equal(existsSync(join(dir, `o-${name}`)), false);
  }
});

test('fuzz: flipped bytes and truncations of a tarball give a clean verdict, never a crash, hang or leftover', async (t) => {
  const { dir, repo } = await sampleRepo(t);
  await exportRepo(repo, join(dir, 'r.tar'));
  const tar = readFileSync(join(dir, 'r.tar'));
  let seed = 12345;
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  let refused = 0;
  for (let i = 0; i < 120; i++) {
    const bad = i % 4 === 0 ? tar.subarray(0, rnd(tar.length)) : Buffer.from(tar);
    if (i % 4 !== 0) for (let k = 0; k <= rnd(3); k++) bad[rnd(bad.length)] ^= 1 << rnd(8);
    writeFileSync(join(dir, 'f.tar'), bad);
    const out = join(dir, `o${i}`);
    try {
      await importTarball(join(dir, 'f.tar'), out);
      sh('rm', ['-rf', out]); // a flip in padding or an unused header field is harmless
    } catch (e) {
      assert.equal((e as { exitCode?: number }).exitCode, 1, `case ${i}: ${(e as Error).stack}`);
      assert.equal(existsSync(out), false);
      refused++;
    }
  }
  assert.ok(refused > 60, `${refused} of 120 refused`);
  assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.')), []);
});
