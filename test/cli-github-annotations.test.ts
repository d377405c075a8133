import assert from 'node:assert/strict';
import { appendFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { annotation } from '../src/cli/github-annotations.ts';
import { initRepo } from '../src/revision/pvr-repo.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/env.ts';

// Expected strings follow the runner's escaping rules (actions/toolkit core: escapeData / escapeProperty).
test('annotations escape data and properties as the Actions runner decodes them', () => {
  assert.equal(
    annotation({ level: 'error', title: 'validate: objects', file: 'out/repo', message: 'object abc of os/root.squashfs is missing\n100% sure' }),
    '::error file=out/repo,title=validate%3A objects::object abc of os/root.squashfs is missing%0A100%25 sure',
  );
  assert.equal(annotation({ level: 'warning', title: 'a,b', message: 'x:y' }), '::warning title=a%2Cb::x:y');
});

test('validate under GITHUB_ACTIONS=true annotates each error; with --json stdout stays one JSON document', async (t) => {
  const dir = await tempDir(t);
  const repo = await initRepo(join(dir, 'repo'));
  await repo.writeState(await repo.commitTree(fileURLToPath(new URL('../samples/revision/a/', import.meta.url))));
  const state = await repo.readState();
  const key = 'app/root.squashfs';
  const object = repo.objects.path(state[key] as string);
  await chmod(object, 0o644);
  await appendFile(object, 'tampered');
  const human = await runCli(['validate', repo.dir], { env: { GITHUB_ACTIONS: 'true' } });
  assert.equal(human.code, 1);
  assert.match(human.stdout, new RegExp(`^::error file=${repo.dir.replace(/[/.]/g, '\\$&')},title=pvmigrate validate error \\[object-hash\\]::${key}: object [0-9a-f]{64} of ${key}`, 'm'));
  const json = await runCli(['validate', repo.dir, '--json'], { env: { GITHUB_ACTIONS: 'true' } });
  assert.equal(json.code, 1);
  assert.equal(JSON.parse(json.stdout).valid, false);
  assert.match(json.stderr, /^::error file=.*\[object-hash\]/m);
  const plain = await runCli(['validate', repo.dir], { env: { GITHUB_ACTIONS: '' } });
  assert.doesNotMatch(plain.stdout + plain.stderr, /^::error/m);
});
