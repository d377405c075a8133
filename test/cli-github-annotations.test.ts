import assert from 'node:assert/strict';
import { test } from 'node:test';
import { annotation } from '../src/cli/github-annotations.ts';

// Expected strings follow the runner's escaping rules (actions/toolkit core: escapeData / escapeProperty).
test('annotations escape data and properties as the Actions runner decodes them', () => {
  assert.equal(
    annotation({ level: 'error', title: 'validate: objects', file: 'out/repo', message: 'object abc of os/root.squashfs is missing\n100% sure' }),
    '::error file=out/repo,title=validate%3A objects::object abc of os/root.squashfs is missing%0A100%25 sure',
  );
  assert.equal(annotation({ level: 'warning', title: 'a,b', message: 'x:y' }), '::warning title=a%2Cb::x:y');
});
