/**
 * The revision state: key and value rules, key classification as Pantavisor's parser does it
 * (PV parser/parser_system1.c `system1_parse_objects`), container and BSP run.json checks, groups.
 */
import { JsonNumber, compareCodePoints, isJsonObject, type JsonObject, type JsonValue } from './canonical-json.ts';

export const SYSTEM_SPEC = 'pantavisor-service-system@1';
export const RUN_SPEC = 'service-manifest-run@1';

/** A state: each key a relative path, each value a sha256 (object) or inline JSON (`.json` keys only). */
export type State = JsonObject;

export interface Issue {
  code: string;
  key?: string;
  message: string;
}

export interface StateReport {
  errors: Issue[];
  warnings: Issue[];
}

const SHA256_RE = /^[0-9a-f]{64}$/;

export function isSha256(v: unknown): v is string {
  return typeof v === 'string' && SHA256_RE.test(v);
}

/** Why `key` is not a valid state key, or undefined when it is. */
export function keyProblem(key: string): string | undefined {
  if (key === '#spec') return undefined;
  if (key.length === 0) return 'empty key';
  if (key.length > 4096) return 'key longer than 4096 characters';
  if (key.startsWith('/')) return 'key starts with /; keys are paths relative to the revision root';
  if (key.includes('\0')) return 'key contains a NUL character';
  if (key.includes('\\')) return 'key contains a backslash';
  for (const seg of key.split('/')) {
    if (seg === '') return 'key has an empty path segment';
    if (seg === '..') return "key has a '..' segment";
    if (seg === '.') return "key has a '.' segment";
  }
  if (key === '_config' || /^_config\/[^/]+$/.test(key)) return '_config keys must be _config/<container>/<path>';
  return undefined;
}

/** Why the value of `key` is not valid, or undefined. */
export function valueProblem(key: string, value: JsonValue): string | undefined {
  if (key === '#spec') return typeof value === 'string' ? undefined : '#spec must be a string';
  if (isSha256(value)) return undefined;
  if (typeof value === 'string') return 'value is a string but not a 64-character lowercase sha256';
  if (!key.endsWith('.json')) return 'inline JSON value on a key that does not end in .json; non-JSON files must be objects (sha256)';
  if (!(isJsonObject(value) || Array.isArray(value))) return 'inline JSON value must be an object or an array';
  return undefined;
}

/** Consumed before the per-key pass (parser step 1). */
const SYSTEM_JSON_KEYS = new Set(['bsp/run.json', 'bsp/drivers.json', 'disks.json', 'disks_v3.json', 'groups.json', 'device.json']);

export type KeyKind = 'spec' | 'system-json' | 'container-run' | 'services' | 'ignored' | 'json' | 'object';

/** What the runtime parser makes of a key (its step order matters: `_sigs/x.json` is ignored, not a JSON file). */
export function classifyKey(key: string, value: JsonValue): KeyKind {
  if (key === '#spec') return 'spec';
  if (SYSTEM_JSON_KEYS.has(key)) return 'system-json';
  if (key.endsWith('/run.json')) return 'container-run';
  if (key.endsWith('/services.json')) return 'services';
  if (key.endsWith('/src.json') || key.endsWith('/build.json') || key.startsWith('_sigs/')) return 'ignored';
  if (key.endsWith('.json') && !isSha256(value)) return 'json';
  return 'object';
}

/** Containers defined by the state: the directory of every `<c>/run.json` except the BSP's. */
export function containerNames(state: State): string[] {
  return Object.keys(state)
    .filter((k) => k.endsWith('/run.json') && k !== 'bsp/run.json')
    .map((k) => k.slice(0, -'/run.json'.length))
    .sort(compareCodePoints);
}

/**
 * Owning container of a key, or undefined for the system (BSP): the first path component when that is
 * a container; for `_config/<c>/…` it is `<c>` when `<c>` is a container.
 */
export function ownerOf(key: string, containers: ReadonlySet<string>): string | undefined {
  const parts = key.split('/');
  const dir = parts[0] === '_config' ? parts[1] : parts[0];
  return dir !== undefined && containers.has(dir) ? dir : undefined;
}

/** Every object the state references: sha256 → the keys naming it, keys in state order. */
export function objectRefs(state: State): Map<string, string[]> {
  const refs = new Map<string, string[]>();
  for (const [k, v] of Object.entries(state)) {
    if (k === '#spec' || !isSha256(v)) continue;
    const list = refs.get(v);
    if (list) list.push(k);
    else refs.set(v, [k]);
  }
  return refs;
}

// ---------------------------------------------------------------------------------------------- groups

export type StatusGoal = 'MOUNTED' | 'STARTED' | 'READY';
export type RestartPolicy = 'system' | 'container';
export const STATUS_GOALS: readonly StatusGoal[] = ['MOUNTED', 'STARTED', 'READY'];
export const RESTART_POLICIES: readonly RestartPolicy[] = ['system', 'container'];

export interface Group {
  name: string;
  statusGoal: StatusGoal;
  restartPolicy: RestartPolicy;
  timeout: number;
}

/** PV defaults/groups.json, in start order. */
export const DEFAULT_GROUPS: readonly Group[] = [
  { name: 'data', statusGoal: 'MOUNTED', restartPolicy: 'system', timeout: 30 },
  { name: 'root', statusGoal: 'STARTED', restartPolicy: 'system', timeout: 30 },
  { name: 'platform', statusGoal: 'STARTED', restartPolicy: 'system', timeout: 30 },
  { name: 'app', statusGoal: 'STARTED', restartPolicy: 'container', timeout: 30 },
];

export interface Groups {
  groups: Group[];
  source: 'device.json' | 'groups.json' | 'default';
}

/** The groups a revision runs with: `device.json` groups, else legacy `groups.json`, else the defaults. */
export function groupsOf(state: State, issues?: Issue[]): Groups {
  const device = state['device.json'];
  let list: JsonValue | undefined;
  let source: Groups['source'] = 'default';
  if (isJsonObject(device) && device.groups !== undefined) {
    list = device.groups;
    source = 'device.json';
  } else if (state['groups.json'] !== undefined && device === undefined) {
    list = state['groups.json'];
    source = 'groups.json';
  }
  if (source === 'default') return { groups: DEFAULT_GROUPS.map((g) => ({ ...g })), source };
  const key = source;
  if (!Array.isArray(list)) {
    issues?.push({ code: 'group', key, message: 'groups must be an array of group objects' });
    return { groups: [], source };
  }
  const groups: Group[] = [];
  for (const g of list) {
    if (!isJsonObject(g) || typeof g.name !== 'string' || g.name === '') {
      issues?.push({ code: 'group', key, message: 'every group needs a non-empty string "name"' });
      continue;
    }
    const goal = g.status_goal ?? 'STARTED';
    const policy = g.restart_policy ?? 'container';
    if (!STATUS_GOALS.includes(goal as StatusGoal)) issues?.push({ code: 'group', key, message: `group '${g.name}': status_goal must be MOUNTED, STARTED or READY` });
    if (!RESTART_POLICIES.includes(policy as RestartPolicy)) issues?.push({ code: 'group', key, message: `group '${g.name}': restart_policy must be system or container` });
    const timeout = g.timeout instanceof JsonNumber || typeof g.timeout === 'number' ? Number(g.timeout instanceof JsonNumber ? g.timeout.text : g.timeout) : 30;
    if (groups.some((x) => x.name === g.name)) issues?.push({ code: 'group', key, message: `group '${g.name}' is defined twice` });
    groups.push({ name: g.name, statusGoal: goal as StatusGoal, restartPolicy: policy as RestartPolicy, timeout });
  }
  return { groups, source };
}

const RUNLEVELS = new Set(['data', 'root', 'platform', 'app']);

/**
 * The group each container runs in (PV state.c): explicit `group`, else deprecated `runlevel`; with the
 * default groups an unassigned container goes to `platform`, except the alphabetically first becomes `root`
 * when no container is root. With custom groups an unassigned container is left out (undefined).
 */
export function containerGroups(state: State, groups: Groups = groupsOf(state)): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  const names = containerNames(state);
  for (const c of names) {
    const run = state[`${c}/run.json`];
    const g = isJsonObject(run) ? (typeof run.group === 'string' ? run.group : typeof run.runlevel === 'string' ? run.runlevel : undefined) : undefined;
    out.set(c, g);
  }
  if (groups.source === 'default') {
    const unassigned = names.filter((c) => out.get(c) === undefined);
    const hasRoot = [...out.values()].includes('root');
    unassigned.forEach((c, i) => out.set(c, i === 0 && !hasRoot ? 'root' : 'platform'));
  }
  return out;
}

/** Restart policy of a container: its own, else its group's default; undefined when the group is unknown. */
export function restartPolicyOf(state: State, container: string, groups: Groups = groupsOf(state)): RestartPolicy | undefined {
  const run = state[`${container}/run.json`];
  if (isJsonObject(run) && (run.restart_policy === 'system' || run.restart_policy === 'container')) return run.restart_policy;
  const g = containerGroups(state, groups).get(container);
  return groups.groups.find((x) => x.name === g)?.restartPolicy;
}

// ---------------------------------------------------------------------------------------------- checks

/** Files bsp/run.json names, relative to `bsp/` (PV parser_system1.c `parse_bsp`). */
const BSP_FILE_FIELDS = ['linux', 'initrd', 'fdt', 'fit', 'modules', 'firmware', 'rpiab'] as const;
const PERSISTENCE = new Set(['permanent', 'revision', 'boot']);
const RECOVERY_POLICIES = new Set(['no', 'always', 'on-failure', 'unless-stopped']);

/**
 * Every structural rule a revision must satisfy: spec, keys, values, bsp/run.json, containers, groups,
 * `_config` owners. Objects and signatures are checked elsewhere (they need the store and keys).
 */
export function checkState(state: JsonValue, options: { requireBsp?: boolean } = {}): StateReport {
  const errors: Issue[] = [];
  const warnings: Issue[] = [];
  if (!isJsonObject(state)) {
    errors.push({ code: 'spec', message: 'the state must be a JSON object' });
    return { errors, warnings };
  }
  if (state['#spec'] === undefined) errors.push({ code: 'spec', key: '#spec', message: `missing #spec; expected "${SYSTEM_SPEC}"` });
  else if (state['#spec'] !== SYSTEM_SPEC) errors.push({ code: 'spec', key: '#spec', message: `#spec is ${JSON.stringify(state['#spec'])}; only "${SYSTEM_SPEC}" is supported` });

  for (const [key, value] of Object.entries(state)) {
    const kp = keyProblem(key);
    if (kp) errors.push({ code: 'key', key, message: kp });
    const vp = valueProblem(key, value);
    if (vp) errors.push({ code: 'value', key, message: vp });
  }

  checkBsp(state, errors, options.requireBsp ?? true);
  const containers = new Set(containerNames(state));
  if (state['device.json'] !== undefined && (state['groups.json'] !== undefined || state['disks.json'] !== undefined)) {
    errors.push({ code: 'group', key: 'device.json', message: 'device.json must not be combined with groups.json or disks.json' });
  }
  if (state['device.json'] !== undefined && !isJsonObject(state['device.json'])) {
    errors.push({ code: 'value', key: 'device.json', message: 'device.json must be an inline JSON object' });
  }
  const groups = groupsOf(state, errors);
  const assigned = containerGroups(state, groups);
  for (const c of containers) checkContainer(state, c, groups, assigned.get(c), errors, warnings);

  for (const key of Object.keys(state)) {
    if (key.startsWith('_config/')) {
      const c = key.split('/')[1];
      if (c && !containers.has(c)) errors.push({ code: 'config-owner', key, message: `_config for container '${c}', which this revision does not define (${c}/run.json)` });
    }
    if (key.endsWith('/services.json') && !containers.has(key.slice(0, -'/services.json'.length))) {
      warnings.push({ code: 'container', key, message: 'services.json of a container this revision does not define' });
    }
  }
  return { errors, warnings };
}

function checkBsp(state: State, errors: Issue[], required: boolean): void {
  const key = 'bsp/run.json';
  const run = state[key];
  if (run === undefined) {
    if (required) errors.push({ code: 'bsp', key, message: 'missing bsp/run.json: every revision needs a BSP (kernel, initrd or fit)' });
    return;
  }
  if (!isJsonObject(run)) {
    errors.push({ code: 'bsp', key, message: 'bsp/run.json must be an inline JSON object' });
    return;
  }
  const named: [string, JsonValue | undefined][] = BSP_FILE_FIELDS.map((f) => [f, run[f]]);
  if (run.addons !== undefined) {
    if (!Array.isArray(run.addons)) errors.push({ code: 'bsp', key, message: 'bsp/run.json "addons" must be an array of file names' });
    else run.addons.forEach((a, i) => named.push([`addons[${i}]`, a]));
  }
  for (const [field, file] of named) {
    if (file === undefined || file === '') continue;
    if (typeof file !== 'string') errors.push({ code: 'bsp', key, message: `bsp/run.json "${field}" must be a file name` });
    else if (state[`bsp/${file}`] === undefined) errors.push({ code: 'bsp', key, message: `bsp/run.json "${field}" names bsp/${file}, which is not a key of the state` });
  }
  if (!run.fit && !(run.linux && run.initrd) && !run.rpiab) {
    errors.push({ code: 'bsp', key, message: 'bsp/run.json names no boot image: give "fit", or "linux" and "initrd" (or "rpiab")' });
  }
}

function checkContainer(state: State, c: string, groups: Groups, group: string | undefined, errors: Issue[], warnings: Issue[]): void {
  const key = `${c}/run.json`;
  const run = state[key];
  const err = (message: string): void => void errors.push({ code: 'container', key, message });
  if (!isJsonObject(run)) {
    err('run.json must be an inline JSON object');
    return;
  }
  if (c.includes('/')) err(`container directory '${c}' must be a single path component`);
  if (run['#spec'] === undefined) warnings.push({ code: 'container', key, message: `run.json has no #spec; expected "${RUN_SPEC}"` });
  else if (run['#spec'] !== RUN_SPEC) err(`#spec is ${JSON.stringify(run['#spec'])}; expected "${RUN_SPEC}"`);
  if (typeof run.name !== 'string' || run.name === '') err('"name" is mandatory');
  else if (run.name !== c) err(`"name" is '${run.name}' but the container directory is '${c}'; they must match`);
  if (run.type !== 'lxc') err(`"type" must be "lxc", not ${JSON.stringify(run.type ?? null)}`);
  if (run.status_goal !== undefined && !STATUS_GOALS.includes(run.status_goal as StatusGoal)) err('"status_goal" must be MOUNTED, STARTED or READY');
  if (run.restart_policy !== undefined && !RESTART_POLICIES.includes(run.restart_policy as RestartPolicy)) err('"restart_policy" must be system or container');
  if (run.runlevel !== undefined) {
    if (typeof run.runlevel !== 'string' || !RUNLEVELS.has(run.runlevel)) err('"runlevel" must be data, root, platform or app');
    else warnings.push({ code: 'container', key, message: '"runlevel" is deprecated; use "group"' });
  }
  if (run.group !== undefined && typeof run.group !== 'string') err('"group" must be a string');
  if (group === undefined) {
    errors.push({ code: 'group', key, message: `container '${c}' has no group, which custom groups (from ${groups.source}) do not allow` });
  } else if (!groups.groups.some((g) => g.name === group)) {
    const known = groups.groups.map((g) => g.name).join(', ') || 'none';
    errors.push({ code: 'group', key, message: `container '${c}' is in group '${group}', which is not defined (groups from ${groups.source}: ${known})` });
  }
  const fileRef = (field: string, ref: JsonValue | undefined, stripPrefix: boolean): void => {
    if (ref === undefined) return;
    if (typeof ref !== 'string' || ref === '') {
      err(`"${field}" must be a file name`);
      return;
    }
    // `[handler:]path` (volumes) and `dm:path` (root-volume through dm-verity).
    const colon = ref.indexOf(':');
    const file = stripPrefix && colon >= 0 ? ref.slice(colon + 1) : ref;
    if (state[`${c}/${file}`] === undefined) err(`"${field}" names ${c}/${file}, which is not a key of the state`);
    if (stripPrefix && ref.startsWith('dm:') && state[`${c}/_dm/${file}.json`] === undefined) {
      err(`"${field}" mounts ${file} through dm-verity but ${c}/_dm/${file}.json is missing`);
    }
  };
  if (run.config === undefined) warnings.push({ code: 'container', key, message: 'no "config" (lxc configuration file)' });
  fileRef('config', run.config, false);
  fileRef('root-volume', run['root-volume'], true);
  if (run.volumes !== undefined) {
    if (!Array.isArray(run.volumes)) err('"volumes" must be an array');
    else run.volumes.forEach((v, i) => fileRef(`volumes[${i}]`, v, true));
  }
  if (run.storage !== undefined) {
    if (!isJsonObject(run.storage)) err('"storage" must be an object of volume name → {"persistence": …}');
    else {
      for (const [vol, s] of Object.entries(run.storage)) {
        const p = isJsonObject(s) ? s.persistence : undefined;
        if (typeof p !== 'string' || !PERSISTENCE.has(p)) err(`storage "${vol}": persistence must be permanent, revision or boot`);
      }
    }
  }
  if (run.roles !== undefined && !(Array.isArray(run.roles) && run.roles.every((r) => r === 'mgmt' || r === 'nobody'))) {
    err('"roles" must be an array of "mgmt" / "nobody"');
  }
  if (run.auto_recovery !== undefined) {
    const p = isJsonObject(run.auto_recovery) ? run.auto_recovery.policy : undefined;
    if (p !== undefined && (typeof p !== 'string' || !RECOVERY_POLICIES.has(p))) err('"auto_recovery.policy" must be no, always, on-failure or unless-stopped');
  }
  if (run.network !== undefined) {
    const m = isJsonObject(run.network) ? run.network.mode : undefined;
    if (m !== undefined && m !== 'host' && m !== 'pool') err('"network.mode" must be host or pool');
  }
}
