import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot, runCli } from './helpers/cli.ts';
import { needTool, privileged, sh } from './helpers/env.ts';

const skip = privileged('sample rootfs with device nodes and ownership') || needTool('mender-artifact') || needTool('python3');

/** A zip written by Python's zipfile (an independent writer), members given as name → content spec. */
function pyZip(out: string, members: [string, string][]): void {
  const script = [
    'import sys, zipfile',
    `z = zipfile.ZipFile(${JSON.stringify(out)}, "w", zipfile.ZIP_DEFLATED)`,
    ...members.map(([name, expr]) => `z.writestr(${JSON.stringify(name)}, ${expr})`),
    'z.close()',
  ].join('\n');
  sh('python3', ['-c', script]);
}

describe('convert: bad inputs exit 1 with a precise message and leave nothing behind', { skip }, () => {
  let dir: string;
  let mender: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pvmigrate-badin-'));
    sh(join(repoRoot, 'samples/rootfs/build.sh'), [join(dir, 'rel'), '1.0', 'mender']);
    mender = join(dir, 'rel/release.mender');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function refused(args: string[], message: RegExp, code = 1): Promise<void> {
    const out = join(dir, `out-${Math.random().toString(36).slice(2)}`);
    const r = await runCli(['convert', ...args, '-o', out]);
    assert.equal(r.code, code, `exit ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    assert.equal(r.stdout, '');
    assert.equal(existsSync(out), false, 'no output repo');
    assert.equal(existsSync(`${out}.pvmigrate`), false, 'no review directory');
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.out-')), [], 'no temp directory left');
  }

  it('a corrupt artifact (payload bytes flipped)', async () => {
    const bad = join(dir, 'corrupt.mender');
    const bytes = readFileSync(mender);
    // Flip bytes well inside data/0000.tar.gz (the payload), after the headers.
    for (let i = bytes.length - 200_000; i < bytes.length - 199_000; i++) bytes[i] = bytes[i]! ^ 0xff;
    writeFileSync(bad, bytes);
    await refused([bad], /^pvmigrate convert: .*corrupt\.mender: /);
  });

  it('a truncated artifact', async () => {
    const bad = join(dir, 'truncated.mender');
    writeFileSync(bad, readFileSync(mender).subarray(0, 300_000));
    await refused([bad], /truncated\.mender: /);
  });

  it('an unsigned artifact when a verification key is given', async () => {
    const pub = join(dir, 'pub.pem');
    writeFileSync(pub, sh('openssl', ['pkey', '-in', join(dir, 'rel/keys/signer.key'), '-pubout']));
    await refused([mender, '--key', pub], /release\.mender: .*(not signed|unsigned|no signature)/i);
  });

  it('a zip member that climbs out with ..', async () => {
    const zip = join(dir, 'traversal.zip');
    pyZip(zip, [['../evil.mender', `open(${JSON.stringify(mender)}, "rb").read()`]]);
    await refused([zip], /traversal\.zip: member '\.\.\/evil\.mender' climbs out of the archive/);
  });

  it('a zip decompression bomb', async () => {
    const zip = join(dir, 'bomb.zip');
    pyZip(zip, [['release.img', 'bytes(100 * 1024 * 1024)']]);
    await refused([zip], /bomb\.zip: member 'release\.img' inflates to .* a decompression bomb/);
  });

  it('a zip holding one artifact converts like the artifact itself', async () => {
    const zip = join(dir, 'ci-artifacts.zip');
    pyZip(zip, [['build/release.mender', `open(${JSON.stringify(mender)}, "rb").read()`]]);
    const out = join(dir, 'from-zip');
    const direct = join(dir, 'direct');
    assert.equal((await runCli(['convert', zip, '-o', out])).code, 0);
    assert.equal((await runCli(['convert', mender, '-o', direct])).code, 0);
    const a = JSON.parse(readFileSync(join(out, '.pvr/json'), 'utf8')) as Record<string, unknown>;
    const b = JSON.parse(readFileSync(join(direct, '.pvr/json'), 'utf8')) as Record<string, unknown>;
    assert.equal((a['pvmigrate/build.json'] as Record<string, unknown>).file, 'ci-artifacts.zip:build/release.mender');
    delete a['pvmigrate/build.json'];
    delete b['pvmigrate/build.json'];
    assert.deepEqual(a, b);
  });

  it('a plan naming paths the image lacks', async () => {
    const plan = join(dir, 'plan.json');
    const w = await runCli(['convert', mender, '--write-plan', plan]);
    assert.equal(w.code, 0, w.stderr);
    const doc = JSON.parse(readFileSync(plan, 'utf8')) as { containers: { paths: string[] }[] };
    doc.containers[1]!.paths.push('/opt/not-there');
    writeFileSync(plan, JSON.stringify(doc));
    await refused([mender, '--plan', plan], /plan\.json: the plan names paths the source does not have: containers\.sensor\.paths \/opt\/not-there/);
    writeFileSync(plan, '{"#spec":"pvmigrate-plan@1"');
    await refused([mender, '--plan', plan], /plan\.json: not JSON/);
  });

  it('Ctrl-C during a conversion leaves neither the repo nor the work directory', async () => {
    const big = join(dir, 'big');
    sh(join(repoRoot, 'samples/rootfs/build.sh'), [big, '1.0', 'mender'], { env: { EXTRA_MB: '48' } });
    const out = join(dir, 'interrupted');
    const child = spawn(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), 'convert', join(big, 'release.mender'), '-o', out], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    const workDirs = () => readdirSync(dir).filter((n) => n.startsWith('.interrupted.pvmigrate-'));
    const deadline = Date.now() + 30_000;
    while (workDirs().length === 0 && Date.now() < deadline) await sleep(20);
    assert.equal(workDirs().length, 1, 'the conversion started its work directory');
    child.kill('SIGINT');
    assert.equal(await exited, 'SIGINT');
    assert.deepEqual(workDirs(), []);
    assert.equal(existsSync(out), false);
  });

  it('an existing output directory is a usage/environment error (exit 2), left untouched', async () => {
    const out = join(dir, 'exists');
    copyFileSync(mender, join(dir, 'keep.mender'));
    assert.equal((await runCli(['convert', mender, '-o', out])).code, 0);
    const before = readFileSync(join(out, '.pvr/json'));
    const r = await runCli(['convert', mender, '-o', out]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /exists: already exists/);
    assert.deepEqual(readFileSync(join(out, '.pvr/json')), before);
  });
});
