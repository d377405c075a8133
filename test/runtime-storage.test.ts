// Trail links are durable steps: each new link is followed by an fsync of the directory holding it,
// checked on the real system calls (strace) of a child process linking a trail.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './helpers/cli.ts';
import { needTool, sh, tempDir } from './helpers/env.ts';

test('linkTrail fsyncs the trail directory after every link it makes', { skip: needTool('strace') }, async (t) => {
  const dir = await tempDir(t);
  const script = `
    import { Readable } from 'node:stream';
    import { Storage } from ${JSON.stringify(join(repoRoot, 'runtime/storage.ts'))};
    const s = new Storage(${JSON.stringify(join(dir, 'storage'))});
    const put = async (text) => (await s.objects.putExpected(await import('node:crypto').then((c) => c.createHash('sha256').update(text).digest('hex')), Readable.from([Buffer.from(text)]))).sha256;
    const a = await put('object a'), b = await put('object b');
    await s.linkTrail('0', { '#spec': 'pantavisor-service-system@1', 'c/one': a, 'c/sub/two': b });
  `;
  const trace = join(dir, 'trace');
  sh('strace', ['-f', '-qq', '-e', 'trace=link,linkat,openat,fsync', '-o', trace, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot });
  const lines = readFileSync(trace, 'utf8').split('\n');
  for (const [key, parent] of [['c/one', 'c'], ['c/sub/two', 'c/sub']]) {
    const target = join(dir, 'storage/trails/0', key);
    const at = lines.findIndex((l) => /\blink(at)?\(/.test(l) && l.includes(`"${target}"`) && / = 0$/.test(l));
    assert.ok(at >= 0, `no link to ${target} in the trace`);
    const dirPath = join(dir, 'storage/trails/0', parent);
    const open = lines.slice(at).find((l) => l.includes(`openat(`) && l.includes(`"${dirPath}"`) && / = \d+$/.test(l));
    assert.ok(open, `the directory ${dirPath} is not opened after linking ${key}`);
    const fd = / = (\d+)$/.exec(open)![1];
    assert.ok(lines.slice(lines.indexOf(open)).some((l) => new RegExp(`fsync\\(${fd}\\) += 0$`).test(l)), `no fsync of ${dirPath} (fd ${fd}) after linking ${key}`);
  }
});
