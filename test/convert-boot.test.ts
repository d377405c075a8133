import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot, runCli } from './helpers/cli.ts';
import { needTool, privileged, sh, tempDir } from './helpers/env.ts';

const skip = privileged('namespace driver: loop mounts and namespaces') || needTool('unshare') || needTool('losetup');

describe('a converted revision boots in the runtime', { skip }, () => {
  it('deploy + run (namespace driver): the base OS and the app container reach STARTED; the app sees its _config file', async (t) => {
    const dir = await tempDir(t);
    sh(join(repoRoot, 'samples/rootfs/build.sh'), [join(dir, 'rel'), '1.0', 'swu']);
    const repo = join(dir, 'repo');
    const c = await runCli(['convert', join(dir, 'rel/release.swu'), '-o', repo, '--ca', join(dir, 'rel/keys/ca.pem'), '--initrd', join(dir, 'rel/initrd.img')]);
    assert.equal(c.code, 0, c.stderr);
    const storage = join(dir, 'storage');
    const d = await runCli(['deploy', repo, '--storage', storage]);
    assert.equal(d.code, 0, d.stderr);

    const child = spawn(process.execPath, [join(repoRoot, 'bin/pvmigrate.js'), 'run', '--storage', storage, '--driver', 'namespace', '--ctrl', join(dir, 'pv-ctrl')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b));
    child.stderr.on('data', (b: Buffer) => (output += b));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    t.after(() => child.kill('SIGKILL'));
    const appLog = join(storage, 'logs/0/sensor/lxc/console.log');
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !(/os=STARTED sensor=STARTED/.test(output) && existsSync(appLog) && /level=debug/.test(readFileSync(appLog, 'utf8')))) await sleep(250);
    child.kill('SIGTERM');
    await exited;
    assert.match(output, /revision 0 up .*: os=STARTED sensor=STARTED/, output);
    assert.match(readFileSync(appLog, 'utf8'), /^sensor 1\.0 level=debug: /m);

    // The same revision through `validate --boot`: every status goal reached, per container, in JSON and JUnit.
    const v = await runCli(['validate', repo, '--boot', '--timeout', '60', '--json', '--junit', join(dir, 'junit.xml')]);
    assert.equal(v.code, 0, v.stderr);
    const doc = JSON.parse(v.stdout);
    assert.equal(doc.valid, true);
    assert.deepEqual(
      doc.boot.containers.map((c: { name: string; status: string; reached: boolean }) => [c.name, c.status, c.reached]),
      [['os', 'STARTED', true], ['sensor', 'STARTED', true]],
    );
    assert.match(readFileSync(join(dir, 'junit.xml'), 'utf8'), /<testcase [^>]*name="sensor"/);
  });
});
