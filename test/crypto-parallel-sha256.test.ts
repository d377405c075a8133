import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { WorkerSha256 } from '../src/crypto/parallel-sha256.ts';

test('worker-thread sha256 equals node:crypto over the same chunks, reusing chunk buffers as the reader does', async () => {
  const chunk = Buffer.alloc(1 << 20);
  const expect = createHash('sha256');
  const hash = new WorkerSha256();
  // 40 chunks through one reused buffer: the worker must hash a copy, not the bytes overwritten later.
  for (let i = 0; i < 40; i++) {
    randomBytes(chunk.length).copy(chunk);
    expect.update(chunk);
    await hash.update(chunk);
  }
  assert.equal(await hash.digest(), expect.digest('hex'));
});

test('worker-thread sha256 of nothing is the empty-string digest', async () => {
  assert.equal(await new WorkerSha256().digest(), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('a worker that dies fails the digest instead of hanging', async () => {
  const hash = new WorkerSha256();
  await hash.update(Buffer.alloc(1024));
  // Simulate a crash of the thread (what an out-of-memory kill would look like from here).
  await (hash as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
  await assert.rejects(hash.digest(), /worker exited/);
});
