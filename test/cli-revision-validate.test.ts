import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { canonicalize, parseJson, parseJsonWithPairs, type JsonObject } from '../src/revision/canonical-json.ts';
import { initRepo } from '../src/revision/pvr-repo.ts';
import { verifyStateSignatures, type StoredState } from '../src/revision/signature.ts';
import type { State } from '../src/revision/state.ts';
import { runCli } from './helpers/cli.ts';
import { sh, tempDir } from './helpers/env.ts';

const samples = fileURLToPath(new URL('../samples/revision/', import.meta.url));

/** A repo committed from the sample tree A (independent of the CLI under test). */
async function sampleRepo(t: TestContext, name = 'a'): Promise<string> {
  const dir = join(await tempDir(t), `repo-${name}`);
  const repo = await initRepo(dir);
  await repo.commitTree(join(samples, name));
  return dir;
}

const stateOf = (dir: string): State => parseJson(readFileSync(join(dir, '.pvr/json'))) as State;
const writeState = (dir: string, text: string): void => writeFileSync(join(dir, '.pvr/json'), text);

async function validateJson(target: string, ...flags: string[]): Promise<{ code: number; doc: Record<string, unknown> & { errors: { code: string; key: string | null; message: string }[] } }> {
  const r = await runCli(['validate', target, '--json', ...flags]);
  return { code: r.code, doc: JSON.parse(r.stdout) };
}

test('validate: a sample revision is valid; --json is one document with the documented fields', async (t) => {
  const dir = await sampleRepo(t);
  const r = await runCli(['validate', dir, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(doc), ['valid', 'spec', 'objects', 'bytes', 'errors', 'warnings', 'signatures']);
  assert.equal(doc.valid, true);
  assert.equal(doc.spec, 'pantavisor-service-system@1');
  assert.equal(doc.objects, 5);
  const human = await runCli(['validate', dir]);
  assert.equal(human.code, 0);
  assert.match(human.stdout, /valid \(mode lenient; spec pantavisor-service-system@1; 5 objects/);
});

test('validate rejects a flipped object byte, a missing object, a non-canonical state, .., inline non-.json, unknown group', async (t) => {
  const cases: [string, (dir: string) => void, string, RegExp][] = [
    ['flipped byte', (dir) => {
      const sha = stateOf(dir)['app/root.squashfs'] as string;
      const p = join(dir, '.pvr/objects', sha);
      const b = readFileSync(p);
      b[100]! ^= 0x01;
      writeFileSync(p, b);
    }, 'object-hash', /hashes to [0-9a-f]{64}: the object is corrupt/],
    ['missing object', (dir) => sh('rm', [join(dir, '.pvr/objects', stateOf(dir)['bsp/kernel.img'] as string)]), 'object-missing', /missing/],
    ['non-canonical state', (dir) => writeState(dir, JSON.stringify(stateOf(dir), null, 2)), 'canonical', /not canonical/],
    ['.. key', (dir) => {
      const s = stateOf(dir);
      s['app/../escape'] = s['bsp/kernel.img']!;
      writeState(dir, canonicalize(s));
    }, 'key', /'\.\.' segment/],
    ['inline value on a non-.json key', (dir) => {
      const s = stateOf(dir);
      s['app/lxc.container.conf'] = parseJson('{"inline":true}');
      writeState(dir, canonicalize(s));
    }, 'value', /does not end in \.json/],
    ['container in an unknown group', (dir) => {
      const s = stateOf(dir);
      (s['app/run.json'] as JsonObject).group = 'nosuchgroup';
      writeState(dir, canonicalize(s));
    }, 'group', /'nosuchgroup', which is not defined/],
  ];
  for (const [what, breakIt, code, message] of cases) {
    const dir = await sampleRepo(t);
    breakIt(dir);
    const { code: exit, doc } = await validateJson(dir);
    assert.equal(exit, 1, what);
    assert.equal(doc.valid, false, what);
    const hit = doc.errors.find((e) => e.code === code);
    assert.ok(hit, `${what}: ${JSON.stringify(doc.errors)}`);
    assert.match(hit.message, message, what);
  }
});

test('validate --junit writes one testcase per check group, failures where errors are', async (t) => {
  const dir = await sampleRepo(t);
  sh('rm', [join(dir, '.pvr/objects', stateOf(dir)['bsp/kernel.img'] as string)]);
  const junit = join(await tempDir(t), 'report.xml');
  const r = await runCli(['validate', dir, '--junit', junit]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error \[object-missing\] bsp\/kernel.img/);
  const xml = readFileSync(junit, 'utf8');
  assert.equal((xml.match(/<testcase /g) ?? []).length, 11);
  assert.match(xml, /<testsuite name="[^"]*" tests="11" failures="1"/);
  assert.match(xml, /<testcase classname="pvmigrate.validate" name="objects">\s*<failure message="1 error\(s\)/);
  // Well-formed: python's XML parser reads it back.
  assert.equal(sh('python3', ['-c', 'import sys,xml.dom.minidom as m;print(len(m.parse(sys.argv[1]).getElementsByTagName("testcase")))', junit]).trim(), '11');
});

test('sign: the signature verifies under both payload rules, validate --mode strict needs coverage', async (t) => {
  const dir = await sampleRepo(t);
  const keys = await tempDir(t);
  const key = join(keys, 'key.pem');
  sh('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', key]);
  sh('openssl', ['pkey', '-in', key, '-pubout', '-out', join(keys, 'pub.pem')]);
  const s = await runCli(['sign', dir, '--key', key, '--part', 'app', '--json']);
  assert.equal(s.code, 0, s.stderr);
  assert.deepEqual(JSON.parse(s.stdout), { signature: '_sigs/app.json', alg: 'ES384', covers: ['_config/app/etc/app.conf', 'app/lxc.container.conf', 'app/root.squashfs', 'app/run.json'], x5c: 0 });
  const stored = parseJsonWithPairs(readFileSync(join(dir, '.pvr/json'))) as StoredState;
  for (const rule of ['pvr', 'runtime'] as const) assert.equal(verifyStateSignatures(stored, 'lenient', {}, rule).ok, true, rule);

  const lenient = await validateJson(dir, '--pubkey', join(keys, 'pub.pem'));
  assert.equal(lenient.code, 0, JSON.stringify(lenient.doc.errors));
  assert.deepEqual(lenient.doc.signatures, [{ name: '_sigs/app.json', alg: 'ES384', verified: true, trust: 'pubkey', covers: ['_config/app/etc/app.conf', 'app/lxc.container.conf', 'app/root.squashfs', 'app/run.json'] }]);
  const strict = await validateJson(dir, '--mode', 'strict');
  assert.equal(strict.code, 1);
  assert.deepEqual(strict.doc.errors.map((e) => e.key).sort(), ['#spec', 'bsp/kernel.img', 'bsp/pantavisor', 'bsp/run.json']);
  assert.equal((await validateJson(dir, '--mode', 'audit')).code, 0);
  const s2 = await runCli(['sign', dir, '--key', key, '--part', 'bsp']);
  assert.equal(s2.code, 0, s2.stderr);
  // #spec is still outside every signature; the coverage rule counts it like any other key.
  assert.deepEqual((await validateJson(dir, '--mode', 'strict')).doc.errors.map((e) => e.key), ['#spec']);
  const raw = await runCli(['sign', dir, '--key', key, '--raw', 'spec', '--include', '#spec', '--json']);
  assert.equal(raw.code, 0, raw.stderr);
  assert.deepEqual(JSON.parse(raw.stdout).covers, ['#spec']);
  const full = await validateJson(dir, '--mode', 'strict', '--pubkey', join(keys, 'pub.pem'));
  assert.equal(full.code, 0, JSON.stringify(full.doc.errors));
  assert.equal((full.doc.signatures as unknown[]).length, 3);

  const other = join(keys, 'other.pem');
  sh('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', other]);
  sh('openssl', ['pkey', '-in', other, '-pubout', '-out', join(keys, 'other-pub.pem')]);
  const wrongKey = await validateJson(dir, '--pubkey', join(keys, 'other-pub.pem'));
  assert.equal(wrongKey.code, 1);
  assert.match(wrongKey.doc.errors[0]!.message, /other than the given public key/);
  // Tampering with a signed value is caught.
  const st = stateOf(dir);
  (st['app/run.json'] as JsonObject).status_goal = 'READY';
  writeState(dir, canonicalize(st));
  const tampered = await validateJson(dir);
  assert.equal(tampered.code, 1);
  assert.ok(tampered.doc.errors.some((e) => e.code === 'signature' && e.key === '_sigs/app.json'));
  assert.equal((await validateJson(dir, '--mode', 'disabled')).code, 0, 'disabled checks no signature');
});

test('export → import → validate round-trips byte-identically; validate takes the tarball too', async (t) => {
  const dir = await sampleRepo(t);
  const work = await tempDir(t);
  const e = await runCli(['export', dir, '-o', join(work, 'rev.tgz'), '--json']);
  assert.equal(e.code, 0, e.stderr);
  assert.deepEqual(JSON.parse(e.stdout), { file: join(work, 'rev.tgz'), gzip: true, objects: 5, bytes: 4398 });
  const i = await runCli(['import', join(work, 'rev.tgz'), '-o', join(work, 'imported')]);
  assert.equal(i.code, 0, i.stderr);
  assert.deepEqual(readFileSync(join(work, 'imported/.pvr/json')), readFileSync(join(dir, '.pvr/json')));
  for (const o of readdirSync(join(dir, '.pvr/objects'))) assert.deepEqual(readFileSync(join(work, 'imported/.pvr/objects', o)), readFileSync(join(dir, '.pvr/objects', o)));
  assert.equal((await runCli(['validate', join(work, 'imported')])).code, 0);
  assert.equal((await runCli(['validate', join(work, 'rev.tgz')])).code, 0);
  assert.equal((await runCli(['export', join(work, 'imported'), '-o', join(work, 'again.tgz')])).code, 0);
  assert.deepEqual(readFileSync(join(work, 'again.tgz')), readFileSync(join(work, 'rev.tgz')));
});

test('import refuses ../x and an extra member with exit 1 and writes nothing', async (t) => {
  const dir = await sampleRepo(t);
  const work = await tempDir(t);
  await runCli(['export', dir, '-o', join(work, 'rev.tar')]);
  const stage = join(work, 'stage');
  sh('mkdir', ['-p', stage]);
  sh('tar', ['-xf', join(work, 'rev.tar'), '-C', stage]);
  writeFileSync(join(work, 'x'), 'outside');
  // GNU tar keeps ../x with -P; the extra member is a plain README.
  sh('tar', ['-cf', join(work, 'dotdot.tar'), '-P', '-C', stage, 'json', 'objects', '../x']);
  writeFileSync(join(stage, 'README'), 'extra');
  sh('tar', ['-czf', join(work, 'extra.tgz'), '-C', stage, 'json', 'objects', 'README']);
  for (const [file, why] of [['dotdot.tar', /unexpected member '\.\.\/x'/], ['extra.tgz', /unexpected member 'README'/]] as const) {
    const out = join(work, `out-${file}`);
    const r = await runCli(['import', join(work, file), '-o', out]);
    assert.equal(r.code, 1, file);
    assert.match(r.stderr, why);
    assert.match(r.stderr, new RegExp(file.replace('.', '\\.')), 'the message names the file');
    assert.equal(existsSync(out), false);
    const v = await validateJson(join(work, file));
    assert.equal(v.code, 1);
    assert.equal(v.doc.valid, false);
  }
  assert.deepEqual(readdirSync(work).filter((n) => n.startsWith('.')), []);
});

test('usage and environment errors exit 2', async (t) => {
  const dir = await sampleRepo(t);
  const cases: string[][] = [
    ['validate', dir, '--mode', 'paranoid'],
    ['validate'],
    ['validate', join(dir, 'nope')],
    ['validate', dir, '--pubkey', join(dir, 'nope.pem')],
    ['export', dir],
    ['import', 'x.tgz'],
    ['sign', dir, '--part', 'app'],
    ['sign', dir, '--key', join(dir, 'nope.pem'), '--part', 'app'],
    ['sign', dir, '--key', join(dir, 'k.pem'), '--part', 'app', '--raw', 'x'],
    ['sign', dir, '--key', join(dir, 'k.pem'), '--raw', 'x'],
    ['sign', dir, '--key', join(dir, 'k.pem'), '--raw', 'x', '--include', '**'],
    ['sign', dir, '--key', join(dir, 'k.pem'), '--part', '../x'],
    ['validate', dir, '--oem-name', 'acme'],
    ['diff', dir],
    ['validate', dir, '--bogus'],
  ];
  for (const args of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '', args.join(' '));
    assert.ok(r.stderr.trim().split('\n').length >= 1 && !/at .*\.ts:\d+/.test(r.stderr), `one-line error, no stack: ${r.stderr}`);
  }
});

test('validate of a bare state JSON file says what a revision needs (exit 1)', async (t) => {
  const file = join(await tempDir(t), 'state.json');
  writeFileSync(file, '{"#spec":"pantavisor-service-system@1"}');
  const { code, doc } = await validateJson(file);
  assert.equal(code, 1);
  assert.equal(doc.errors[0]!.code, 'not-a-revision');
  assert.match(doc.errors[0]!.message, /state\.json: this is a JSON file, not a pvr repo or an export tarball/);
});

test('sign --x5c (RSA leaf from a CA) → validate --truststore: chain trusted; another CA refuses it', async (t) => {
  const dir = await sampleRepo(t);
  const pki = await tempDir(t);
  const o = (args: string[]): string => sh('openssl', args, { cwd: pki });
  for (const ca of ['ca', 'other-ca']) {
    o(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-subj', `/CN=${ca}`, '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE']);
  }
  o(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=release signer']);
  o(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '30']);
  const s = await runCli(['sign', dir, '--key', join(pki, 'leaf.key'), '--x5c', join(pki, 'leaf.pem'), '--part', 'app', '--json']);
  assert.equal(s.code, 0, s.stderr);
  assert.equal(JSON.parse(s.stdout).alg, 'RS256');
  assert.equal(JSON.parse(s.stdout).x5c, 1);
  const good = await validateJson(dir, '--truststore', join(pki, 'ca.pem'));
  assert.equal(good.code, 0, JSON.stringify(good.doc.errors));
  assert.equal((good.doc.signatures as { trust: string }[])[0]!.trust, 'chain');
  const bad = await validateJson(dir, '--truststore', join(pki, 'other-ca.pem'));
  assert.equal(bad.code, 1);
  assert.match(bad.doc.errors[0]!.message, /rejected by the truststore: no issuer for 'CN=ca'/);
  // The same certificate with another key is refused at signing time (exit 1: the inputs do not match).
  const mismatch = await runCli(['sign', dir, '--key', join(pki, 'ca.key'), '--x5c', join(pki, 'leaf.pem'), '--part', 'app']);
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.stderr, /does not carry the signing key/);
});
