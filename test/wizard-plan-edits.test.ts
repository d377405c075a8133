import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validatePlan, type Plan } from '../src/split/plan.ts';
import { applyEdits } from '../src/wizard/plan-edits.ts';

// A plan as the detector writes it for the sample release (see samples/rootfs/build.sh).
const detected: Plan = validatePlan({
  '#spec': 'pvmigrate-plan@1',
  bsp: { kernel: '/boot/vmlinuz', fit: null, dtbs: [], modules: [], firmware: null, initrd: null },
  containers: [
    { name: 'os', kind: 'base', group: 'root', restart_policy: 'system', paths: [], init: ['/sbin/init'], env: {}, workdir: null, storage: {} },
    { name: 'sensor', kind: 'app', group: 'app', restart_policy: 'container', paths: ['/etc/init.d/S90sensor', '/opt/sensor'], init: ['/opt/sensor/bin/run'], env: {}, workdir: null, storage: {} },
  ],
  config: [],
  removed: [{ path: '/usr/bin/mender-update', updater: 'mender', what: 'Mender client' }],
  review: [],
});

test('each edit changes exactly what it names, and the plan stays valid', () => {
  const plan = applyEdits(detected, [
    { op: 'rename', container: 'sensor', to: 'telemetry' },
    { op: 'group', container: 'telemetry', group: 'platform' },
    { op: 'restart_policy', container: 'telemetry', restart_policy: 'system' },
    { op: 'status_goal', container: 'telemetry', status_goal: 'READY' },
    { op: 'keep', path: '/usr/bin/mender-update' },
    { op: 'move', path: '/etc/init.d/S90sensor', to: 'os' },
  ]);
  const app = plan.containers[1]!;
  assert.deepEqual([app.name, app.group, app.restart_policy, app.status_goal, app.paths], ['telemetry', 'platform', 'system', 'READY', ['/opt/sensor']]);
  assert.deepEqual(plan.removed, []);
  assert.deepEqual(detected.containers[1]!.name, 'sensor', 'the detected plan is left untouched');
});

test('moving part of an app tree to the base is refused instead of silently ignored', () => {
  assert.throws(() => applyEdits(detected, [{ op: 'move', path: '/opt/sensor/etc', to: 'os' }], 'answers.json'), (err: Error & { file?: string }) => {
    assert.match(err.message, /edit 1 \(move\): \/opt\/sensor\/etc lies inside \/opt\/sensor of the app "sensor"/);
    assert.equal(err.file, 'answers.json');
    return true;
  });
});

test('a sub-path can move to another app (the longest prefix wins in the split)', () => {
  const withTwo = applyEdits(detected, [{ op: 'move', path: '/opt/sensor', to: 'sensor' }]);
  withTwo.containers.push({ ...withTwo.containers[1]!, name: 'cfg', paths: ['/srv'] });
  const plan = applyEdits(validatePlan(withTwo), [{ op: 'move', path: '/opt/sensor/etc', to: 'cfg' }]);
  assert.deepEqual(plan.containers[2]!.paths, ['/opt/sensor/etc', '/srv']);
});

test('edits naming what does not exist fail with the edit number', () => {
  assert.throws(() => applyEdits(detected, [{ op: 'keep', path: '/nope' }]), /edit 1 \(keep\): \/nope is not in the removal list/);
  assert.throws(() => applyEdits(detected, [{ op: 'rename', container: 'sensor', to: 'os' }]), /a container named "os" exists already/);
  assert.throws(() => applyEdits(detected, [{ op: 'rename', container: 'sensor', to: 'Bad Name' }]), /edit 1 \(rename\).*name/);
});
