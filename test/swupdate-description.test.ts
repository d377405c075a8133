/**
 * The sw-description parsers and lookup, on inputs whose expected trees are written out by hand from the
 * libconfig grammar (lib/scanner.l, lib/grammar.y) and swupdate's parser.c rules.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toPlain } from '../importers/swupdate/config-tree.ts';
import { Description, findTemplates, followRef, hardwareMatches } from '../importers/swupdate/description.ts';
import { parseJsonDescription } from '../importers/swupdate/json.ts';
import { parseLibconfig } from '../importers/swupdate/libconfig.ts';
import { sniffSignature } from '../importers/swupdate/signature.ts';
import { InvalidInputError } from '../src/errors.ts';

const lc = (text: string) => toPlain(parseLibconfig(text, 'sw-description'));

test('libconfig scalars: integers (hex, L, 64-bit), floats, booleans, strings with escapes and concatenation', () => {
  assert.deepEqual(
    lc(`a = 10; b = -0x10; c = 0xFFFFFFFF; d = 5L; e = 9007199254740993; f = 1.5e3; g = .5; h = TRUE; i = fAlSe;
        j = "x\\ty\\x41\\q" " more"; k = 0b101; l = 0o17; m = +7;`),
    { a: 10, b: -16, c: -1, d: 5, e: '9007199254740993', f: 1500, g: 0.5, h: true, i: false, j: 'x\tyA\\q more', k: 5, l: 15, m: 7 },
  );
});

test('libconfig structure: groups, lists, arrays, ":" and "=", optional terminators, trailing commas, comments', () => {
  assert.deepEqual(
    lc(`# c1
      s: { l = ( 1, "two", { x = 1 }, [1, 2,], ), // c2
           /* c3 */ g = { } , e = () ; a = [] }`),
    { s: { l: [1, 'two', { x: 1 }, [1, 2]], g: {}, e: [], a: [] } },
  );
});

test('libconfig errors name line:column and what is wrong', () => {
  const cases: [string, RegExp][] = [
    ['a = 1;\n  a = 2;', /^sw-description 2:3: duplicate setting name 'a'$/],
    ['a = [1, "x"];', /^sw-description 1:9: mismatched element type in array: string after int$/],
    ['a = [1, 2.0];', /^sw-description 1:9: mismatched element type in array: float after int$/],
    ['a = ({ b = 1 } x);', /^sw-description 1:16: ',' or '\)' expected in list, found 'x'$/],
    ['\n\n  @include "x.cfg"', /^sw-description 3:3: @include is not allowed/],
    ['rev1.0 = 1;', /^sw-description 1:5: '\.' is not allowed in a setting name/],
    ['a = "open', /^sw-description 1:5: string is never closed$/],
    ['a = { b = 1;', /^sw-description 1:13: unexpected end of file: '}' expected$/],
    ['/* never closed', /^sw-description 1:1: comment \/\* is never closed$/],
    ['a = yes;', /^sw-description 1:5: value expected, found 'yes' \(strings need double quotes\)$/],
    ['a = 99999999999999999999;', /^sw-description 1:5: integer 99999999999999999999 does not fit in 64 bits$/],
    ['a = [ { b = 1 } ];', /^sw-description 1:7: value expected, found '\{'$/],
    ['1a = 2;', /^sw-description 1:1: setting name expected, found '1'$/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseLibconfig(text, 'f.swu'), (e: InvalidInputError) => e.code === 'sw-description-syntax' && e.file === 'f.swu' && re.test(e.message), text);
  }
});

test('deep nesting is refused, not a stack overflow', () => {
  assert.throws(() => parseLibconfig('a = ' + '('.repeat(100_000)), /nesting deeper than 200 levels/);
  assert.throws(() => parseJsonDescription('{"a":' + '['.repeat(100_000)), /nesting deeper than 200 levels/);
});

test('JSON with json-c leniency: comments, trailing commas, single quotes, case-insensitive literals, \\u escapes', () => {
  const tree = parseJsonDescription(`{ /* c */ "software": { 'version': "1.0", // c
    "n": [1, -2, 3.5e1, TRUE, Null, "\\u00e9\\n",], }, }`);
  assert.deepEqual(toPlain(tree), { software: { version: '1.0', n: [1, -2, 35, true, null, 'é\n'] } });
  assert.throws(() => parseJsonDescription('{ "a": 1, "a": 2 }'), /1:11: duplicate key 'a'/);
  assert.throws(() => parseJsonDescription('{ "a": 1 } x'), /1:12: unexpected 'x' after the closing/);
  assert.throws(() => parseJsonDescription('{ "a": 01 }'), /1:8: '01' is not a number/);
});

const description = (text: string) => new Description(parseLibconfig(text), 'x.swu');

test('lookup order board.set.mode → set.mode → board → root, key by key, with ref links', () => {
  const d = description(`software = {
    version = "root";
    description = "root description";
    hw = { version = "board"; stable = { main = { images = ( { filename = "hw-main"; device = "/dev/a"; } ); }; }; };
    stable = {
      main = { version = "set"; images = ( { filename = "main"; device = "/dev/b"; } ); };
      alt = { ref = "#./main"; };
      other = { images = ( { ref = "#../../shared"; }, { filename = "own"; volume = "v"; } ); };
    };
    shared = ( { filename = "shared"; } );
    version-link = { ref = "#/software/stable/main/version"; };
  };`);
  const pick = (board?: string, set?: string, mode?: string) => d.resolve({ board, set, mode });
  assert.equal(pick().version, 'root');
  assert.equal(pick('hw').version, 'board');
  assert.equal(pick(undefined, 'stable', 'main').version, 'set');
  assert.equal(pick('hw', 'stable', 'main').version, 'set'); // set.mode before board
  assert.deepEqual(pick('hw', 'stable', 'main').entries.map((e) => e.filename), ['hw-main']);
  assert.equal(pick('hw', 'stable', 'main').description, 'root description');
  assert.deepEqual(pick(undefined, 'stable', 'alt').entries.map((e) => [e.filename, e.type]), [['main', 'raw']]);
  assert.deepEqual(pick(undefined, 'stable', 'other').entries.map((e) => [e.filename, e.type]), [['shared', ''], ['own', 'ubivol']]);
  const v = d.variants();
  assert.deepEqual(v.boards, ['hw']);
  assert.deepEqual(v.selections, ['stable,main', 'stable,alt', 'stable,other']);
});

test('entry defaults and attributes as swupdate parser.c reads them', () => {
  const d = description(`software = { version = "1";
    images = ( { filename = "a"; volume = "v"; compressed = true; encrypted = true; ivt = "00112233445566778899aabbccddeeff";
                 offset = "16K"; size = 5L; installed-directly = true; install-if-higher = true; properties = { k = "v"; n = 1; }; } );
    files = ( { filename = "b"; path = "/b"; encrypted = "aes-ctr-256"; compressed = "zstd"; } );
    scripts = ( { filename = "c"; }, { type = "lua"; } );
    partitions = ( { name = "p"; device = "mtd1"; size = 0; } );
    bootenv = ( { name = "x"; value = "1"; } );
    vars = ( { name = "y"; value = "2"; } ); };`);
  const r = d.resolve({});
  const [p, a, b, c, noName] = r.entries;
  assert.equal(p!.type, 'ubipartition');
  assert.deepEqual([a!.type, a!.compressed, a!.encrypted, a!.offset, a!.size, a!.installedDirectly, a!.installIfHigher, a!.properties], ['ubivol', 'zlib', 'aes-cbc', '16K', 5, true, true, { k: 'v' }]);
  assert.deepEqual([b!.type, b!.compressed, b!.encrypted], ['rawfile', 'zstd', 'aes-ctr-256']);
  assert.equal(c!.type, 'lua');
  assert.equal(noName!.filename, undefined);
  assert.deepEqual(r.bootenv, { x: '1' });
  assert.deepEqual(r.vars, { y: '2' });
  assert.ok(d.warnings.some((w) => /property 'n'/.test(w)));
  assert.throws(() => description(`software = { version = "1"; images = ( { filename = "a"; compressed = "lzma"; } ); };`).resolve({}), /compressed at 1:71: 'lzma' unknown/);
});

test('ref paths, templates, hardware patterns and signature sniffing', () => {
  assert.deepEqual(followRef(['software', 'stable', 'copy2'], '#./copy1'), ['software', 'stable', 'copy1']);
  assert.deepEqual(followRef(['software', 'stable', 'copy1', 'images'], '#../../common'), ['software', 'common']);
  assert.deepEqual(followRef(['software', 'a', 'b'], '#/software/x'), ['software', 'x']);
  assert.equal(followRef(['software', 'a'], '#../../../x'), undefined);
  assert.equal(followRef(['software', 'a'], 'file.cfg'), undefined);
  const tree = parseLibconfig(`software = { version = "@@DISTRO_VERSION@@"; images = ( { filename = "a"; sha256 = "$swupdate_get_sha256(a)"; }, { filename = "b"; sha256 = "@b"; } ); };`);
  assert.deepEqual(findTemplates(tree), ['@@DISTRO_VERSION@@ at 1:24', '$swupdate_get_sha256(a) at 1:84', 'sha256 = "@b" at 1:141']);
  assert.equal(hardwareMatches(['1.0', '#RE:^2\\.[0-9]+$'], '2.7'), true);
  assert.equal(hardwareMatches(['1.0', '#RE:^2\\.[0-9]+$'], '1.0'), true);
  assert.equal(hardwareMatches(['1.0', '#RE:^2\\.[0-9]+$'], '3.0'), false);
  assert.equal(sniffSignature(Buffer.from('-----BEGIN PGP SIGNATURE-----\n')), 'gpg');
  // One v4 signature packet, old-format 2-byte length header (0x89) and new-format header (0xc2).
  const body = Buffer.concat([Buffer.from([4, 0, 1, 8]), Buffer.alloc(20, 7)]);
  assert.equal(sniffSignature(Buffer.concat([Buffer.from([0x89, 0, body.length]), body])), 'gpg');
  assert.equal(sniffSignature(Buffer.concat([Buffer.from([0xc2, body.length]), body])), 'gpg');
  // A raw RSA signature that happens to start with a packet tag byte is still raw.
  for (const first of [0x88, 0x89, 0x8a, 0xc2, 0x30]) assert.equal(sniffSignature(Buffer.concat([Buffer.from([first]), Buffer.alloc(255, 0x5a)])), 'raw');
});
