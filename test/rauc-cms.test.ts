import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { before, describe, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { makePki, noise, type Pki } from '../samples/rauc/fixtures.ts';
import { verifyCmsSignedData } from '../src/crypto/cms.ts';
import { decryptEnvelopedData } from '../src/crypto/enveloped.ts';
import { PvError } from '../src/errors.ts';
import { BufferSource } from '../src/fs/source.ts';
import { needTool } from './helpers/env.ts';

/** src/crypto against `openssl cms`: what OpenSSL signs we verify (and reject what it rejects); what it encrypts we decrypt. */
const skip = needTool('openssl');

function openssl(args: string[]): { status: number; stderr: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: r.status ?? -1, stderr: r.stderr };
}

describe('CMS with openssl-made messages', { skip }, () => {
  let tmp: string;
  let pki: Pki;
  let content: Buffer;
  const p = (n: string): string => join(tmp, n);
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'pvmigrate-cms-'));
    pki = makePki(join(tmp, 'pki'));
    content = noise(300 * 1024, 9);
    writeFileSync(p('content'), content);
  });
  process.on('exit', () => tmp && rmSync(tmp, { recursive: true, force: true }));

  const sign = (name: string, signer: { cert: string; key: string }, extra: string[]): Buffer => {
    const r = openssl(['cms', '-sign', '-binary', '-md', 'sha256', '-in', p('content'), '-signer', signer.cert, '-inkey', signer.key, '-outform', 'DER', '-out', p(name), ...extra]);
    assert.equal(r.status, 0, r.stderr);
    return readFileSync(p(name));
  };
  const opensslVerifies = (name: string, detached: boolean, purpose = 'smimesign', ca = pki.rootCa): boolean =>
    openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', p(name), '-CAfile', ca, '-purpose', purpose, ...(detached ? ['-content', p('content')] : []), '-out', '/dev/null']).status === 0;

  const cases: [string, () => { cert: string; key: string }, string[], boolean][] = [
    ['RSA detached, intermediate in the CMS', () => pki.rsa, ['-certfile', 'INTERMEDIATE'], true],
    ['ECDSA inline', () => pki.ec, ['-nodetach'], false],
    ['RSA detached without signed attributes', () => pki.rsa, ['-certfile', 'INTERMEDIATE', '-noattr'], true],
    ['ECDSA detached, subject key identifier as signer id', () => pki.ec, ['-keyid'], true],
  ];
  for (const [label, signer, flags, detached] of cases) {
    test(`${label}: verifies like openssl cms -verify`, async () => {
      const name = label.replace(/\W+/g, '-');
      const der = sign(name, signer(), flags.map((f) => (f === 'INTERMEDIATE' ? pki.intermediate : f)));
      assert.equal(opensslVerifies(name, detached), true);
      const r = await verifyCmsSignedData({
        cms: der,
        detachedContent: detached ? new BufferSource(content, 'content') : undefined,
        trustAnchors: readFileSync(pki.rootCa, 'utf8'),
      });
      assert.equal(r.contentDigest, spawnSync('sha256sum', [p('content')], { encoding: 'utf8' }).stdout.slice(0, 64));
      if (!detached) assert.ok(r.content!.equals(content));
      assert.equal(r.chain.at(-1)!.subject, 'O = pvmigrate test, CN = Test Root CA');
    });
  }

  test('BER indefinite lengths (openssl cms -stream), signed inline and enveloped: read as OpenSSL reads them', async () => {
    const der = sign('ber', pki.ec, ['-nodetach', '-stream']);
    assert.equal(der[1], 0x80, 'openssl wrote an indefinite length');
    assert.equal(opensslVerifies('ber', false), true);
    const r = await verifyCmsSignedData({ cms: der, trustAnchors: readFileSync(pki.rootCa, 'utf8') });
    assert.ok(r.content!.equals(content));
    const e = openssl(['cms', '-encrypt', '-binary', '-stream', '-aes256', '-in', p('content'), '-outform', 'DER', '-out', p('ber-env'), pki.rsa.cert]);
    assert.equal(e.status, 0, e.stderr);
    const env = readFileSync(p('ber-env'));
    assert.equal(env[1], 0x80);
    assert.ok(decryptEnvelopedData({ cms: env, privateKeyPem: readFileSync(pki.rsa.key, 'utf8') }).content.equals(content));
  });

  test('detached content as a Readable stream; other content fails as in openssl', async () => {
    const der = sign('stream', pki.rsa, ['-certfile', pki.intermediate]);
    const anchors = readFileSync(pki.rootCa, 'utf8');
    await verifyCmsSignedData({ cms: der, detachedContent: Readable.from([content.subarray(0, 1000), content.subarray(1000)]), trustAnchors: anchors });
    const other = Buffer.from(content);
    other[12345]! ^= 1;
    writeFileSync(p('other'), other);
    assert.notEqual(openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', p('stream'), '-CAfile', pki.rootCa, '-content', p('other'), '-out', '/dev/null']).status, 0);
    await assert.rejects(verifyCmsSignedData({ cms: der, detachedContent: new BufferSource(other, 'other'), trustAnchors: anchors }), (e: PvError) => e.code === 'cms-content-mismatch');
  });

  test('purposes agree with openssl: codeSigning-only leaf fails smimesign, passes codesign (OpenSSL 3 has no codesign purpose: any)', async () => {
    const der = sign('code', pki.codeSigning, ['-nodetach']);
    assert.equal(opensslVerifies('code', false, 'smimesign'), false);
    assert.equal(opensslVerifies('code', false, 'any'), true);
    const anchors = readFileSync(pki.rootCa, 'utf8');
    await assert.rejects(verifyCmsSignedData({ cms: der, trustAnchors: anchors }), (e: PvError) => e.code === 'cert-purpose');
    await verifyCmsSignedData({ cms: der, trustAnchors: anchors, purpose: 'codesign' });
    await verifyCmsSignedData({ cms: der, trustAnchors: anchors, purpose: 'any' });
  });

  test('expired signer fails now and verifies at a time inside its validity (as openssl -attime)', async () => {
    const der = sign('expired', pki.expired, ['-nodetach']);
    assert.equal(opensslVerifies('expired', false), false);
    const anchors = readFileSync(pki.rootCa, 'utf8');
    await assert.rejects(verifyCmsSignedData({ cms: der, trustAnchors: anchors }), (e: PvError) => e.code === 'cert-expired' && e.exitCode === 1);
    // The root CA was made today, so no single past instant is inside every certificate: skip time checks instead.
    const r = await verifyCmsSignedData({ cms: der, trustAnchors: anchors, time: false });
    assert.equal(r.signer.subject, 'O = pvmigrate test, CN = Release expired');
  });

  test('untrusted: wrong anchors, or a missing intermediate', async () => {
    const withInt = sign('int', pki.rsa, ['-certfile', pki.intermediate, '-nodetach']);
    const without = sign('noint', pki.rsa, ['-nodetach']);
    assert.equal(opensslVerifies('noint', false), false);
    await assert.rejects(verifyCmsSignedData({ cms: withInt, trustAnchors: readFileSync(pki.otherCa, 'utf8') }), (e: PvError) => e.code === 'cert-untrusted');
    await assert.rejects(verifyCmsSignedData({ cms: without, trustAnchors: readFileSync(pki.rootCa, 'utf8') }), (e: PvError) => e.code === 'cert-untrusted' && /Test Intermediate CA/.test(e.message));
    // With the intermediate in the anchors (as in RAUC keyrings holding a whole CA bundle) it verifies.
    await verifyCmsSignedData({ cms: without, trustAnchors: readFileSync(pki.rootCa, 'utf8') + readFileSync(pki.intermediate, 'utf8') });
  });

  test('corrupt DER: a clear cms-malformed error, never a crash', async () => {
    const der = sign('corrupt', pki.ec, ['-nodetach']);
    for (const cut of [10, 100, der.length - 1]) {
      await assert.rejects(verifyCmsSignedData({ cms: der.subarray(0, cut), trustAnchors: readFileSync(pki.rootCa, 'utf8') }), (e: PvError) => e.code === 'cms-malformed' && e.exitCode === 1);
    }
  });

  test('envelopedData with mixed RSA (ktri) and EC (kari) recipients: each key decrypts what openssl encrypted', () => {
    const r = openssl(['cms', '-encrypt', '-binary', '-aes256', '-in', p('content'), '-outform', 'DER', '-out', p('env'), pki.rsa.cert, pki.ec.cert, pki.codeSigning.cert]);
    assert.equal(r.status, 0, r.stderr);
    const env = readFileSync(p('env'));
    for (const k of [pki.rsa.key, pki.ec.key, pki.codeSigning.key]) {
      const d = decryptEnvelopedData({ cms: env, privateKeyPem: readFileSync(k, 'utf8') });
      assert.ok(d.content.equals(content), k);
      assert.equal(d.contentType, '1.2.840.113549.1.7.1');
    }
    assert.throws(() => decryptEnvelopedData({ cms: env, privateKeyPem: readFileSync(join(pki.dir, 'other.key'), 'utf8') }), (e: PvError) => e.code === 'cms-not-recipient' && /none of the 3 recipients \(2 of its type RSA\)/.test(e.message));
  });

  test('envelopedData with RSA-OAEP key transport', () => {
    const r = openssl(['cms', '-encrypt', '-binary', '-aes128', '-in', p('content'), '-outform', 'DER', '-out', p('oaep'), '-recip', pki.rsa.cert, '-keyopt', 'rsa_padding_mode:oaep']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(decryptEnvelopedData({ cms: readFileSync(p('oaep')), privateKeyPem: readFileSync(pki.rsa.key, 'utf8') }).content.equals(content));
  });
});
