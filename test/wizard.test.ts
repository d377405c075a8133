import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot, runCli } from './helpers/cli.ts';
import { needTool, privileged, sh } from './helpers/env.ts';

// The sample release is built by the real tools (mkfs.ext4, mender-artifact, rauc); device nodes need root.
const skip = privileged('building the sample release (device nodes)') || needTool('tmux') || needTool('mender-artifact');
const bin = join(repoRoot, 'bin', 'pvmigrate.js');

/** A wizard running in a real pseudo-terminal (tmux), read back the way a person sees it. */
class Terminal {
  private readonly session = `pvmigrate-wizard-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  constructor(command: string, cwd: string, env: Record<string, string> = {}) {
    const envArgs = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    execFileSync('tmux', ['new-session', '-d', '-s', this.session, '-x', '160', '-y', '60', '-c', cwd, ...envArgs, `${command}; echo "EXIT=$?"; sleep 60`]);
  }
  screen(): string {
    return execFileSync('tmux', ['capture-pane', '-p', '-S', '-200', '-t', this.session]).toString();
  }
  async waitFor(text: string | RegExp, timeoutMs = 30_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const s = this.screen();
      if (typeof text === 'string' ? s.includes(text) : text.test(s)) return s;
      if (Date.now() > end) throw new Error(`timed out waiting for ${text} on screen:\n${s}`);
      await sleep(150);
    }
  }
  keys(...keys: string[]): void {
    execFileSync('tmux', ['send-keys', '-t', this.session, ...keys]);
  }
  type(text: string): void {
    execFileSync('tmux', ['send-keys', '-t', this.session, '-l', text]);
  }
  close(): void {
    spawnSync('tmux', ['kill-session', '-t', this.session]);
  }
}

describe('wizard', { skip }, () => {
  let work: string;
  let release: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'pvmigrate-wizard-'));
    release = join(work, 'release');
    sh('bash', [join(repoRoot, 'samples/rootfs/build.sh'), release, '1.0', 'mender']);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test('driven through a pseudo-terminal end to end, then replayed from its answers to an identical revision', { timeout: 180_000 }, async () => {
    const out = join(work, 'out-tty');
    let revision = '';
    const term = new Terminal(`node ${bin} wizard ${release}`, work, { NO_COLOR: '1' });
    try {
      // 1. artifacts found by content in the directory, largest choice first in name order
      let s = await term.waitFor('Artifact to convert');
      assert.match(s, /release\.mender\s+\(mender, [\d.]+ MiB\)/);
      assert.match(s, /rootfs\.ext4\s+\(ext4, 32\.0 MiB\)/);
      assert.doesNotMatch(s, /initrd\.img \(/, 'a gzip cpio initrd is not offered as an input');
      assert.doesNotMatch(s, /\x1b\[3\dm/, 'NO_COLOR: no colour escapes');
      term.keys('Enter');
      await term.waitFor('Output directory');
      term.type(out);
      term.keys('Enter');
      // unsigned Mender artifact: no trust question; the payload is verified with its bytes shown
      s = await term.waitFor('Runtime initrd');
      assert.match(s, /mender, unsigned; \d+ payloads/);
      assert.match(s, /✔ data\/0000\/rootfs\.ext4: 32\.0 MiB sha256 [0-9a-f]{16}… verified/);
      term.type(join(release, 'initrd.img'));
      term.keys('Enter');
      // 2. the detected plan, then an edit: rename the app container
      s = await term.waitFor('Change the plan?');
      assert.match(s, /kernel \/boot\/vmlinuz-6\.1\.0-sample/);
      assert.match(s, /sensor\s+app\s+group app/);
      assert.match(s, /Removed \(old updater\): \d+/);
      term.keys('Down', 'Enter');
      await term.waitFor('Which container?');
      term.keys('Down', 'Enter');
      await term.waitFor('New name');
      term.type('telemetry');
      term.keys('Enter');
      s = await term.waitFor(/telemetry\s+app\s+group app/);
      await term.waitFor('Accept the plan and convert');
      term.keys('Enter');
      // 3. no signing key; boot the result; convert + validate + boot run
      await term.waitFor('to sign the revision');
      term.keys('Enter');
      await term.waitFor('Boot the result in the runtime');
      term.keys('Enter');
      s = await term.waitFor('EXIT=', 120_000);
      assert.match(s, /boot \((namespace|process) driver, [\d.]+ s\): every status goal reached/);
      assert.match(s, /ok {3}os \(root\): STARTED, goal STARTED/);
      assert.match(s, /ok {3}telemetry \(app\): STARTED, goal STARTED/);
      revision = /revision ([0-9a-f]{64}) written to .*\/repo \(valid\)/.exec(s)?.[1] ?? '';
      assert.notEqual(revision, '', s);
      assert.match(s, /EXIT=0/);
      assert.match(s, /pvmigrate deploy .*repo --storage/);
    } finally {
      term.close();
    }
    // 4. everything appeared at once, and the record holds the edit
    assert.deepEqual((await readdir(out)).sort(), ['answers.json', 'plan.json', 'repo', 'repo.pvmigrate', 'report.html', 'report.json']);
    const answers = JSON.parse(await readFile(join(out, 'answers.json'), 'utf8'));
    assert.deepEqual(answers.edits, [{ op: 'rename', container: 'sensor', to: 'telemetry' }]);
    const state = JSON.parse(await readFile(join(out, 'repo/.pvr/json'), 'utf8'));
    assert.equal(state['telemetry/run.json'].name, 'telemetry');
    assert.equal(state['sensor/run.json'], undefined);

    const replay = await runCli(['wizard', '--answers', join(out, 'answers.json'), '-o', join(work, 'out-replay'), '--report', join(work, 'replay.html'), '--json']);
    assert.equal(replay.code, 0, replay.stderr);
    // --report writes the same report as the one kept in the output directory.
    assert.deepEqual(JSON.parse(await readFile(join(work, 'replay.json'), 'utf8')), JSON.parse(await readFile(join(work, 'out-replay/report.json'), 'utf8')));
    assert.equal(JSON.parse(replay.stdout).revision, revision);
    assert.deepEqual(await readFile(join(work, 'out-replay/repo/.pvr/json')), await readFile(join(out, 'repo/.pvr/json')));
  });

  test('Ctrl-C at a prompt stops with 130 and leaves nothing behind', { timeout: 60_000 }, async () => {
    const out = join(work, 'out-cancel');
    const term = new Terminal(`node ${bin} wizard --input ${join(release, 'release.mender')} -o ${out} --initrd ${join(release, 'initrd.img')}`, work);
    try {
      await term.waitFor('Change the plan?');
      term.keys('C-c');
      const s = await term.waitFor('EXIT=');
      assert.match(s, /EXIT=130/);
      assert.match(s, /cancelled; nothing was written/);
    } finally {
      term.close();
    }
    assert.equal(existsSync(out), false);
    assert.deepEqual((await readdir(work)).filter((n) => n.startsWith('.out-cancel')), [], 'no temp directory left');
  });

  test('without a terminal or answers it says how to proceed (exit 2)', async () => {
    const r = await runCli(['wizard', '--input', join(release, 'release.mender'), '-o', join(work, 'out-notty')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /needs a terminal to ask "initrd".*--answers FILE.*pvmigrate convert/);
    assert.equal(existsSync(join(work, 'out-notty')), false);
  });

  test('a replay whose recorded edit no longer fits fails with the edit named (exit 1)', async () => {
    const answers = join(work, 'bad-answers.json');
    await writeFile(answers, JSON.stringify({ '#spec': 'pvmigrate-wizard-answers@1', input: join(release, 'release.mender'), trust: {}, acceptUnverified: false, initrd: null, edits: [{ op: 'rename', container: 'nosuch', to: 'x' }], boot: false, signKey: null, output: join(work, 'out-bad') }));
    const r = await runCli(['wizard', '--answers', answers]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad-answers\.json: edit 1 \(rename\): no container named "nosuch"/);
    assert.equal(existsSync(join(work, 'out-bad')), false);
  });
});
