import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseJson } from '../src/revision/canonical-json.ts';
import {
  checkState,
  classifyKey,
  containerGroups,
  keyProblem,
  objectRefs,
  ownerOf,
  restartPolicyOf,
  valueProblem,
  type State,
} from '../src/revision/state.ts';
import { corpus, corpusSkip } from './helpers/env.ts';

const sha = (c: string): string => c.repeat(64);

function minimal(): State {
  return parseJson(
    JSON.stringify({
      '#spec': 'pantavisor-service-system@1',
      'bsp/run.json': { linux: 'kernel.img', initrd: 'pantavisor', addons: [] },
      'bsp/kernel.img': sha('1'),
      'bsp/pantavisor': sha('2'),
      'app/run.json': { '#spec': 'service-manifest-run@1', name: 'app', type: 'lxc', config: 'lxc.container.conf', 'root-volume': 'root.squashfs', volumes: [], storage: { 'lxc-overlay': { persistence: 'boot' } } },
      'app/lxc.container.conf': sha('3'),
      'app/root.squashfs': sha('4'),
    }),
  ) as State;
}
const codes = (s: State): string[] => checkState(s).errors.map((e) => `${e.code}:${e.key ?? ''}`);

test('key rules: relative, no .. / . / empty segment, no NUL or backslash', () => {
  for (const good of ['bsp/run.json', '_config/c/etc/x', 'a b/c', 'README.md', '#spec']) assert.equal(keyProblem(good), undefined, good);
  for (const bad of ['/abs', 'a/../b', '..', 'a/./b', 'a//b', 'a/', '', 'a\0b', 'a\\b', '_config/c']) assert.ok(keyProblem(bad), bad);
});

test('value rules: sha256 or inline JSON on .json keys only', () => {
  assert.equal(valueProblem('x/y', sha('a')), undefined);
  assert.equal(valueProblem('x.json', sha('a')), undefined, 'a .json key may be a raw object (pvr add --raw)');
  assert.equal(valueProblem('x.json', parseJson('{"a":1}')), undefined);
  assert.match(valueProblem('x/y', parseJson('{"a":1}'))!, /does not end in \.json/);
  assert.match(valueProblem('x/y', sha('A'))!, /lowercase sha256/);
  assert.match(valueProblem('x/y', 'abc')!, /sha256/);
  assert.match(valueProblem('x.json', 'plain')!, /sha256/);
});

test('classification follows the runtime parser order', () => {
  const cases: [string, unknown, string][] = [
    ['#spec', 'x', 'spec'],
    ['bsp/run.json', {}, 'system-json'],
    ['device.json', {}, 'system-json'],
    ['app/run.json', {}, 'container-run'],
    ['app/services.json', {}, 'services'],
    ['app/src.json', {}, 'ignored'],
    ['bsp/build.json', {}, 'ignored'],
    ['_sigs/app.json', {}, 'ignored'],
    ['app/_dm/root.squashfs.json', {}, 'json'],
    ['app/x.json', sha('a'), 'object'],
    ['app/root.squashfs', sha('a'), 'object'],
  ];
  for (const [k, v, kind] of cases) assert.equal(classifyKey(k, parseJson(JSON.stringify(v))), kind, k);
  const containers = new Set(['app']);
  assert.equal(ownerOf('app/root.squashfs', containers), 'app');
  assert.equal(ownerOf('_config/app/etc/x', containers), 'app');
  assert.equal(ownerOf('_config/gone/etc/x', containers), undefined);
  assert.equal(ownerOf('bsp/kernel.img', containers), undefined);
  assert.equal(ownerOf('device.json', containers), undefined);
});

test('a minimal revision is valid; each broken rule is reported with its key', () => {
  assert.deepEqual(codes(minimal()), []);
  const cases: [(s: State) => void, string][] = [
    [(s) => delete s['#spec'], 'spec:#spec'],
    [(s) => (s['#spec'] = 'pantavisor-multi-platform@1'), 'spec:#spec'],
    [(s) => (s['a/../b'] = sha('5')), 'key:a/../b'],
    [(s) => (s['app/notes.txt'] = parseJson('{"x":1}')), 'value:app/notes.txt'],
    [(s) => delete s['bsp/run.json'], 'bsp:bsp/run.json'],
    [(s) => delete s['bsp/pantavisor'], 'bsp:bsp/run.json'],
    [(s) => delete s['app/root.squashfs'], 'container:app/run.json'],
    [(s) => ((s['app/run.json'] as Record<string, unknown>).type = 'docker'), 'container:app/run.json'],
    [(s) => ((s['app/run.json'] as Record<string, unknown>).status_goal = 'RUNNING'), 'container:app/run.json'],
    [(s) => ((s['app/run.json'] as Record<string, unknown>).restart_policy = 'always'), 'container:app/run.json'],
    [(s) => ((s['app/run.json'] as Record<string, unknown>).name = 'other'), 'container:app/run.json'],
    [(s) => ((s['app/run.json'] as Record<string, unknown>).group = 'nosuchgroup'), 'group:app/run.json'],
    [(s) => ((s['app/run.json'] as Record<string, unknown>)['root-volume'] = 'dm:root.squashfs'), 'container:app/run.json'],
    [(s) => ((s['app/run.json'] as Record<string, unknown>).storage = parseJson('{"v":{"persistence":"forever"}}')), 'container:app/run.json'],
    [(s) => (s['_config/ghost/etc/x'] = sha('6')), 'config-owner:_config/ghost/etc/x'],
    [(s) => ((s['device.json'] = parseJson('{"groups":[{"name":"base"}]}')), (s['groups.json'] = parseJson('[]'))), 'group:device.json'],
  ];
  for (const [mutate, want] of cases) {
    const s = minimal();
    mutate(s);
    assert.ok(codes(s).includes(want), `${want} in ${JSON.stringify(codes(s))}`);
  }
});

test('groups: defaults put the first unassigned container in root; custom groups need an assignment', () => {
  const s = minimal();
  s['b/run.json'] = parseJson('{"#spec":"service-manifest-run@1","name":"b","type":"lxc"}');
  assert.deepEqual([...containerGroups(s)], [['app', 'root'], ['b', 'platform']]);
  assert.equal(restartPolicyOf(s, 'app'), 'system');
  (s['b/run.json'] as Record<string, unknown>).group = 'app';
  assert.equal(restartPolicyOf(s, 'b'), 'container', 'the app group defaults to container');
  s['device.json'] = parseJson('{"groups":[{"name":"base","restart_policy":"container"}]}');
  const errs = checkState(s).errors;
  assert.ok(errs.some((e) => e.key === 'app/run.json' && /no group/.test(e.message)), JSON.stringify(errs));
  assert.ok(errs.some((e) => e.key === 'b/run.json' && /'app', which is not defined/.test(e.message)));
});

test('corpus: initial_state.json passes every structural check; groups and policies as the real parser', { skip: corpusSkip }, () => {
  const s = parseJson(readFileSync(corpus('pantavisor', 'resources', 'initial_state.json'))) as State;
  const r = checkState(s);
  assert.deepEqual(r.errors, []);
  assert.deepEqual([...containerGroups(s)], [['awconnect', 'root'], ['pv-avahi', 'platform'], ['pvr-sdk', 'platform']]);
  assert.ok(objectRefs(s).size > 10);
  // A package with _config for containers it does not carry fails the owner check.
  const cfg = parseJson(readFileSync(corpus('pantavisor', 'resources', 'config_a.json'))) as State;
  assert.ok(checkState(cfg, { requireBsp: false }).errors.every((e) => e.code === 'config-owner'));
});
