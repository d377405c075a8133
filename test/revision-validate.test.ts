import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { canonicalize, parseJson } from '../src/revision/canonical-json.ts';
import { initRepo, openRepo } from '../src/revision/pvr-repo.ts';
import type { State } from '../src/revision/state.ts';
import { parseCertificates } from '../src/revision/trust.ts';
import { junitXml, validateRepo } from '../src/revision/validate.ts';
import { corpus, corpusSkip, tempDir } from './helpers/env.ts';

const samples = fileURLToPath(new URL('../samples/revision/', import.meta.url));

test('corpus state in a repo: signatures verify with the runtime rule and the dev CA; only its absent objects fail', { skip: corpusSkip }, async (t) => {
  const dir = await tempDir(t);
  const repo = await initRepo(dir);
  const s = parseJson(readFileSync(corpus('pantavisor', 'resources', 'initial_state.json'))) as State;
  delete s['_sigs/_hostconfig.json'];
  writeFileSync(repo.statePath, canonicalize(s));
  const truststore = parseCertificates(readFileSync(corpus('pantavisor', 'trust', 'ca-certificates.crt'), 'utf8'));
  const r = await validateRepo(await openRepo(dir), { mode: 'lenient', truststore, at: new Date('2023-06-01T00:00:00Z') });
  assert.deepEqual(
    r.signatures.map((x) => [x.name, x.verified, x.trust]),
    ['awconnect', 'bsp', 'pv-avahi', 'pvr-sdk'].map((n) => [`_sigs/${n}.json`, true, 'chain']),
  );
  assert.deepEqual([...new Set(r.errors.map((e) => e.code))], ['object-missing']);
  assert.equal(r.objects, r.errors.length);
  // The pretty-printed original is refused as non-canonical, its signatures still reported.
  writeFileSync(repo.statePath, readFileSync(corpus('pantavisor', 'resources', 'initial_state.json')));
  const pretty = await validateRepo(repo, { mode: 'lenient' });
  assert.ok(pretty.errors.some((e) => e.code === 'canonical'));
  assert.equal(pretty.signatures.filter((x) => x.verified).length, 4);
});

test('extra checks (the validate --boot extension point) run on a valid revision and get their own testcase', async (t) => {
  const dir = await tempDir(t);
  const repo = await initRepo(dir);
  await repo.commitTree(join(samples, 'a'));
  let ran = 0;
  const boot = {
    name: 'boot',
    run: async () => {
      ran++;
      return { errors: [{ code: 'x', key: 'app/run.json', message: 'container app did not reach STARTED' }], warnings: [] };
    },
  };
  const r = await validateRepo(repo, { mode: 'lenient', extraChecks: [boot] });
  assert.equal(r.valid, false);
  assert.deepEqual(r.errors, [{ code: 'boot', key: 'app/run.json', message: 'container app did not reach STARTED' }]);
  const xml = junitXml(r, 'sample');
  assert.match(xml, /tests="12" failures="1"/);
  assert.match(xml, /name="boot">\s*<failure/);
  // Not run when the revision is already invalid.
  writeFileSync(repo.statePath, readFileSync(repo.statePath, 'utf8') + ' ');
  const bad = await validateRepo(repo, { mode: 'lenient', extraChecks: [boot] });
  assert.equal(ran, 1);
  assert.deepEqual(bad.extraChecks, []);
});
