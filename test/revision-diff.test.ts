import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { canonicalize, parseJson, type JsonObject } from '../src/revision/canonical-json.ts';
import { applyMergePatch, createMergePatch, diffStates } from '../src/revision/diff.ts';
import type { State } from '../src/revision/state.ts';
import { corpus, corpusSkip } from './helpers/env.ts';

const load = (dir: string, name: string): State => parseJson(readFileSync(corpus('pantavisor', dir, name))) as State;
const j = (s: string): JsonObject => parseJson(s) as JsonObject;
const noSizes = async (): Promise<number | undefined> => undefined;

test('RFC 7386 appendix A examples (applyMergePatch)', () => {
  const cases: [string, string, string][] = [
    ['{"a":"b"}', '{"a":"c"}', '{"a":"c"}'],
    ['{"a":"b"}', '{"b":"c"}', '{"a":"b","b":"c"}'],
    ['{"a":"b"}', '{"a":null}', '{}'],
    ['{"a":"b","b":"c"}', '{"a":null}', '{"b":"c"}'],
    ['{"a":["b"]}', '{"a":"c"}', '{"a":"c"}'],
    ['{"a":"c"}', '{"a":["b"]}', '{"a":["b"]}'],
    ['{"a":{"b":"c"}}', '{"a":{"b":"d","c":null}}', '{"a":{"b":"d"}}'],
    ['{"a":[{"b":"c"}]}', '{"a":[1]}', '{"a":[1]}'],
    ['["a","b"]', '["c","d"]', '["c","d"]'],
    ['{"a":"b"}', '["c"]', '["c"]'],
    ['{"a":"foo"}', 'null', 'null'],
    ['{"a":"foo"}', '"bar"', '"bar"'],
    ['{"e":null}', '{"a":1}', '{"a":1,"e":null}'],
    ['[1,2]', '{"a":"b","c":null}', '{"a":"b"}'],
    ['{}', '{"a":{"bb":{"ccc":null}}}', '{"a":{"bb":{}}}'],
  ];
  for (const [target, patch, want] of cases) assert.equal(canonicalize(applyMergePatch(parseJson(target), parseJson(patch))), canonicalize(parseJson(want)), `${target} + ${patch}`);
});

test('createMergePatch: removed → null, nested objects recurse, and applying it gives B', () => {
  const a = j('{"x":"1","y":{"p":1,"q":[1]},"z":{"k":1}}');
  const b = j('{"x":"1","y":{"p":2,"q":[1]},"w":"new"}');
  assert.equal(canonicalize(createMergePatch(a, b)), '{"w":"new","y":{"p":2},"z":null}');
  assert.equal(canonicalize(applyMergePatch(a, createMergePatch(a, b))), canonicalize(b));
});

test('corpus: initial_state + vaultwarden = state_after_new_package; app group → restart only, bytes counted', { skip: corpusSkip }, async () => {
  const a = load('resources', 'initial_state.json');
  const b = load('expected', 'state_after_new_package.json');
  const pkg = load('resources', 'vaultwarden.json');
  const sizes = new Map<string, number>();
  const d = await diffStates(a, b, async (sha) => {
    sizes.set(sha, 1000 + sizes.size);
    return sizes.get(sha);
  });
  assert.deepEqual(d.added, Object.keys(pkg).filter((k) => k !== '#spec').sort());
  assert.deepEqual(d.removed, []);
  assert.deepEqual(d.changed, []);
  assert.equal(canonicalize(applyMergePatch(a, d.patch)), canonicalize(b));
  assert.equal(d.reboot, false, JSON.stringify(d.rebootReasons));
  assert.deepEqual(d.restartContainers, ['vaultwarden']);
  assert.ok(sizes.size > 0);
  assert.equal(d.bytesToShip, [...sizes.values()].reduce((x, y) => x + y, 0));
});

test('corpus: removing a root-group container, a BSP update, a system container change all reboot', { skip: corpusSkip }, async () => {
  const removal = await diffStates(load('resources', 'initial_state.json'), load('expected', 'state_after_remove.json'), noSizes);
  assert.ok(removal.removed.includes('awconnect/run.json'));
  assert.equal(removal.reboot, true);
  assert.match(removal.rebootReasons.find((r) => r.key === 'awconnect/run.json')!.reason, /restart_policy system/);
  const bsp = await diffStates(load('resources', 'bsp_init_groups.json'), load('expected', 'state_bsp_update.json'), noSizes);
  assert.deepEqual(bsp.removed, ['disks.json', 'groups.json']);
  assert.equal(bsp.reboot, true);
  assert.ok(bsp.rebootReasons.some((r) => r.key === 'device.json' && /system/.test(r.reason)));
  // bsp_init → bsp_update differ only in their signature: ignored by the parser, so nothing to do.
  const sigOnly = await diffStates(load('resources', 'bsp_init.json'), load('expected', 'state_bsp_update.json'), noSizes);
  assert.deepEqual(sigOnly.changed, ['_sigs/bsp.json']);
  assert.equal(sigOnly.reboot, false);
  const pvws = await diffStates(load('resources', 'pvws_with_config.json'), load('resources', 'pvws_without_config.json'), noSizes);
  assert.ok(pvws.removed.some((k) => k.startsWith('_config/pvws/')));
  assert.equal(pvws.reboot, true, 'pvws defaults to the root group (system)');
});

test('only ignored keys changed (signatures, src.json) → nothing to do; a container-policy app restarts alone', async () => {
  const base = j(
    '{"#spec":"pantavisor-service-system@1","app/run.json":{"name":"app","type":"lxc","group":"app"},"app/root.squashfs":"' + 'a'.repeat(64) + '","app/src.json":{"v":1},"_sigs/app.json":{"#spec":"pvs@2","protected":"x","signature":"y"}}',
  );
  const sigOnly = structuredClone(base) as State;
  Object.setPrototypeOf(sigOnly, null);
  sigOnly['app/src.json'] = j('{"v":2}');
  sigOnly['_sigs/app.json'] = j('{"#spec":"pvs@2","protected":"x2","signature":"y2"}');
  const d1 = await diffStates(base, sigOnly, noSizes);
  assert.deepEqual(d1.changed, ['_sigs/app.json', 'app/src.json']);
  assert.equal(d1.reboot, false);
  assert.deepEqual(d1.restartContainers, []);
  const newRoot = j(canonicalize(base).replace('a'.repeat(64), 'b'.repeat(64))) as State;
  const d2 = await diffStates(base, newRoot, async () => 4096);
  assert.deepEqual(d2.restartContainers, ['app']);
  assert.equal(d2.bytesToShip, 4096);
  const sys = j(canonicalize(newRoot).replace('"group":"app"', '"group":"app","restart_policy":"system"')) as State;
  assert.equal((await diffStates(base, sys, noSizes)).reboot, true, 'policy system on the B side forces a reboot');
});
