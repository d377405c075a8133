// The shared decompressors against the real compression tools, and their bounds on hostile input.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { DecompressError, decompress, decompressStream, lz4BlockDecompress, lzo1xDecompress } from '../src/fs/compression.ts';
import { needTool } from './helpers/env.ts';
import { spawnSync } from 'node:child_process';

function payload(): Buffer {
  let seed = 99;
  const random = Buffer.alloc(1 << 20).map(() => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed >> 16));
  const text = Buffer.from('pantavisor revision state object trail\n'.repeat(60_000));
  return Buffer.concat([text, random, text.subarray(0, 12345)]);
}

function tool(cmd: string, args: string[], input: Buffer): Buffer {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  return r.stdout;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function drain(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

for (const [kind, cmd, args] of [
  ['gzip', 'gzip', ['-9c']],
  ['xz', 'xz', ['-c', '-T1']],
  ['zstd', 'zstd', ['-c', '-q']],
] as const) {
  test(`${kind}: stream and block decoding reproduce what ${cmd} compressed`, { skip: needTool(cmd) }, async () => {
    const data = payload();
    const packed = tool(cmd, [...args], data);
    // Fed in odd-sized pieces, as a network or a tar member would.
    const pieces: Buffer[] = [];
    for (let i = 0; i < packed.length; i += 7777) pieces.push(packed.subarray(i, i + 7777));
    const streamed = await drain(Readable.from(pieces).pipe(decompressStream(kind)));
    assert.equal(sha(streamed), sha(data));
    assert.equal(sha(await decompress(kind, packed, data.length)), sha(data));
    // One byte less room than the content needs is refused, in both forms.
    await assert.rejects(decompress(kind, packed, data.length - 1), DecompressError);
    await assert.rejects(drain(Readable.from(pieces).pipe(decompressStream(kind, data.length - 1))), DecompressError);
  });
}

test('zstd: a frame claiming a huge content size is refused before decoding', { skip: needTool('zstd') }, async () => {
  // --stream-size makes zstd record the content size in the frame header, as squashfs's zstd blocks do.
  const packed = tool('zstd', ['-c', '-q', '--stream-size=1000'], Buffer.alloc(1000, 1));
  await assert.rejects(decompress('zstd', packed, 999), /claims 1000 bytes/);
});

test('lz4 and lzo decoders: random garbage is a DecompressError, never a crash or an overrun', () => {
  let seed = 5;
  for (let i = 0; i < 2000; i++) {
    const junk = Buffer.from(Buffer.alloc(1 + (i % 300)).map(() => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed >> 16)));
    for (const decode of [lz4BlockDecompress, lzo1xDecompress]) {
      try {
        const out = decode(junk, 4096);
        assert.ok(out.length <= 4096);
      } catch (err) {
        assert.ok(err instanceof DecompressError, String(err));
      }
    }
  }
});

test('lz4 block: hand-made sequences decode (literals, overlapping match, last literals)', () => {
  // token 0x44: 4 literals "abcd", match len 4+4=8 at offset 4 → "abcdabcdabcd", then token 0x10 + "z".
  const block = Buffer.from([0x44, 0x61, 0x62, 0x63, 0x64, 0x04, 0x00, 0x10, 0x7a]);
  assert.equal(lz4BlockDecompress(block, 100).toString(), 'abcdabcdabcdz');
  assert.throws(() => lz4BlockDecompress(block, 12), DecompressError);
});

// (zstd is left out: fzstd decodes each input chunk whole, so one small chunk of a highly compressible
// frame yields all its output at once; the next chunk then waits, as for any Transform.)
for (const [kind, cmd] of [['xz', 'xz'], ['gzip', 'gzip']] as const) {
  test(`${kind} stream: a reader that stops reading stops the decoding, and the input stays unread`, { skip: needTool(cmd) }, async () => {
    // 64 MiB of output from 10 KiB of input, fed as the compressed file, 4 KiB a piece, read lazily.
    const out = 64 << 20;
    const packed = tool(cmd, ['-c', '-1'], Buffer.alloc(out));
    const inputPieces = [...Array(Math.ceil(packed.length / 4096)).keys()].map((i) => packed.subarray(i * 4096, (i + 1) * 4096));
    // Incompressible data after it, so the input side has something to hold back too.
    let seed = 3;
    const noise = Buffer.from(Buffer.alloc(8 << 20).map(() => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed >> 16)));
    const packedNoise = tool(cmd, ['-c', '-1'], noise);
    for (let i = 0; i < packedNoise.length; i += 65536) inputPieces.push(packedNoise.subarray(i, i + 65536));
    let fed = 0;
    const source = Readable.from(
      (function* () {
        for (const p of inputPieces) {
          fed += p.length;
          yield p;
        }
      })(),
    );
    const decoder = decompressStream(kind);
    source.pipe(decoder);
    // Nobody reads for a while: decoded bytes waiting and compressed bytes taken must both stay small.
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(decoder.readableLength <= 4 << 20, `${decoder.readableLength} decoded bytes buffered with no reader`);
    assert.ok(fed < packed.length + (2 << 20), `${fed} of ${packed.length + packedNoise.length} compressed bytes taken with no reader`);
    // Then everything arrives, in order.
    const h = createHash('sha256');
    let n = 0;
    for await (const c of decoder) {
      h.update(c as Buffer);
      n += (c as Buffer).length;
    }
    assert.equal(n, out + noise.length);
    assert.equal(h.digest('hex'), createHash('sha256').update(Buffer.alloc(out)).update(noise).digest('hex'));
  });
}
