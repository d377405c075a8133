/** What inspect reports about an image beyond pass/fail: boards, collections, hooks, templates, leftovers. */
import assert from 'node:assert/strict';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { needTool, tempDir } from './helpers/env.ts';
import { inspect, packSwu, writeFiles } from './helpers/swupdate.ts';

const skip = needTool('cpio');

async function image(dir: string, description: (s: Record<string, string>) => string, members: string[]) {
  const s = await writeFiles(dir, { 'a.bin': 'a\n', 'b.bin': 'b\n', 'left.bin': 'left over\n' });
  await writeFile(join(dir, 'sw-description'), description(s));
  return packSwu(dir, ['sw-description', ...members]);
}

test('several boards: listed, none chosen without --board; an unknown --select is a usage error naming the choices', { skip }, async (t) => {
  const dir = await tempDir(t);
  const swu = await image(dir, (s) => `software = { version = "1";
    alpha = { hardware-compatibility = ["1"]; images = ( { filename = "a.bin"; device = "/dev/a"; sha256 = "${s['a.bin']}"; } ); };
    beta = { stable = { main = { images = ( { filename = "b.bin"; device = "/dev/b"; sha256 = "${s['b.bin']}"; } ); }; }; };
  };`, ['a.bin', 'b.bin', 'left.bin']);
  const none = await inspect(swu);
  assert.equal(none.code, 0, none.stderr);
  assert.deepEqual(none.doc.boards, ['alpha', 'beta']);
  assert.deepEqual(none.doc.selections, ['stable,main']);
  assert.equal(none.doc.board, null);
  assert.deepEqual(none.doc.payloads, []);
  assert.ok(none.doc.warnings.some((w: string) => /boards alpha, beta: choose one with --board/.test(w)));
  assert.deepEqual(none.doc.unreferenced, ['left.bin']);
  const beta = await inspect(swu, ['--board', 'beta', '--select', 'stable,main']);
  assert.deepEqual(beta.doc.payloads.map((p: { name: string }) => p.name), ['b.bin']);
  const alpha = await inspect(swu, ['--board', 'alpha']);
  assert.deepEqual(alpha.doc.payloads.map((p: { name: string }) => p.name), ['a.bin']);
  const wrong = await inspect(swu, ['--select', 'stable,other']);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /no software collection 'stable,other'; found: stable,main/);
});

test('hooks, build templates and unexpanded placeholders are reported; --strict refuses templates', { skip }, async (t) => {
  const dir = await tempDir(t);
  const swu = await image(dir, (s) => `software = { version = "@@DISTRO_VERSION@@";
    embedded-script = "function check(image) return true, image end";
    images = ( { filename = "a.bin"; device = "/dev/a"; sha256 = "${s['a.bin']}"; hook = "check"; } ); };`, ['a.bin']);
  const r = await inspect(swu);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.doc.embeddedScript, true);
  assert.equal(r.doc.payloads[0].hook, 'check');
  assert.ok(r.doc.warnings.some((w: string) => /Lua hooks .*a\.bin \(check\)/.test(w)));
  assert.ok(r.doc.warnings.some((w: string) => /unexpanded build template @@DISTRO_VERSION@@ at 1:24/.test(w)));
  const strict = await inspect(swu, ['--strict']);
  assert.equal(strict.code, 1);
  assert.match(strict.stderr, /unexpanded build template/);
});

test('data after the cpio trailer is reported; GNU cpio zero padding is not', { skip }, async (t) => {
  const dir = await tempDir(t);
  const swu = await image(dir, (s) => `software = { version = "1"; images = ( { filename = "a.bin"; device = "/dev/a"; sha256 = "${s['a.bin']}"; } ); };`, ['a.bin']);
  const clean = await inspect(swu);
  assert.deepEqual(clean.doc.warnings, []);
  await appendFile(swu, 'JUNK');
  const junk = await inspect(swu);
  assert.equal(junk.code, 0, junk.stderr);
  assert.ok(junk.doc.warnings.some((w: string) => /bytes follow the cpio trailer \(not zero padding\)/.test(w)), junk.doc.warnings.join('; '));
});
