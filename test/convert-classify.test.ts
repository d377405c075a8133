import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openArtifact } from '../importers/open.ts';
import { classifyExtras } from '../src/convert/classify.ts';
import type { ExtraPayload } from '../src/convert/open-source.ts';
import type { PlanContainer } from '../src/split/plan.ts';
import { corpus, corpusSkip } from './helpers/env.ts';

const containers: PlanContainer[] = [
  { name: 'os', kind: 'base', group: 'root', restart_policy: 'system', paths: [], init: ['/sbin/init'], env: {}, workdir: null, storage: {} },
  { name: 'web', kind: 'app', group: 'app', restart_policy: 'container', paths: ['/opt/web'], init: ['/opt/web/run'], env: {}, workdir: null, storage: {} },
];

function extra(name: string, kind: ExtraPayload['kind'], attributes: Record<string, unknown>, content = ''): ExtraPayload {
  return { name, kind, size: content.length, attributes, stream: () => (async function* () { yield Buffer.from(content); })() as never };
}

describe('payload classification into _config and review items', () => {
  it('a real Mender single-file module artifact: dest_dir + filename name the _config path; the instructions are consumed', { skip: corpusSkip }, async () => {
    const a = await openArtifact(corpus('mender/mender-server__backend_tests_data_date.mender'), {});
    try {
      const extras = a.payloads.map((p) => ({ name: p.name, kind: p.kind, size: p.size, attributes: p.attributes, stream: () => p.stream() }));
      const { config, review } = await classifyExtras(extras, containers);
      // SOURCES.md: files dest_dir ("/"), filename ("date.created"), permissions, date.created.
      assert.deepEqual(config, [{ payload: 'data/0000/date.created', member: null, container: 'os', path: '/date.created' }]);
      assert.deepEqual(review, []);
    } finally {
      await a.close();
    }
  });

  it('SWUpdate files go to the app owning their path, scripts/bootenv/raw/packages to review with a safe file name', async () => {
    const { config, review } = await classifyExtras(
      [
        extra('web.conf', 'file', { section: 'files', type: 'rawfile', path: '/opt/web/etc/web.conf' }),
        extra('motd', 'file', { section: 'files', type: 'rawfile', path: '/etc/motd' }),
        extra('post.sh', 'script', { section: 'scripts', type: 'shellscript' }),
        extra('uboot-env', 'image', { section: 'images', type: 'bootloader' }),
        extra('../boot.img', 'image', { section: 'images', type: 'raw', device: '/dev/mmcblk0p1' }),
        extra('tool_1.0_arm64.deb', 'module', { payloadType: 'deb' }),
        extra('README', 'file', { section: 'files', type: 'rawfile' }),
      ],
      containers,
    );
    assert.deepEqual(config, [
      { payload: 'web.conf', member: null, container: 'web', path: '/opt/web/etc/web.conf' },
      { payload: 'motd', member: null, container: 'os', path: '/etc/motd' },
    ]);
    assert.deepEqual(review.map((r) => [r.item, r.kind, r.file]), [
      ['post.sh', 'script', 'review/post.sh'],
      ['uboot-env', 'bootenv', 'review/uboot-env'],
      ['../boot.img', 'raw', 'review/__boot.img'],
      ['tool_1.0_arm64.deb', 'deb', 'review/tool_1.0_arm64.deb'],
      ['README', 'unknown', 'review/README'],
    ]);
  });
});
