/**
 * What the runtime needs from a revision's state: its groups (device.json or Pantavisor's defaults) and its
 * containers ("platforms" in Pantavisor) with the effective status goal, restart policy and auto-recovery,
 * resolved the way PV:parser/parser_system1.c and PV:state.c do (reference §2.2, §2.3).
 */
import { InvalidInputError } from '../src/errors.ts';
import { JsonNumber, isJsonObject, type JsonObject, type JsonValue } from '../src/revision/canonical-json.ts';
import { checkState, containerGroups, containerNames, groupsOf, isSha256, restartPolicyOf, type RestartPolicy, type State, type StatusGoal } from '../src/revision/state.ts';

export type { RestartPolicy, StatusGoal };
export type RecoveryPolicy = 'no' | 'always' | 'on-failure' | 'unless-stopped';

export interface AutoRecovery {
  policy: RecoveryPolicy;
  maxRetries: number;
  /** Seconds before the first retry. */
  retryDelay: number;
  backoffFactor: number;
}

export interface Group {
  name: string;
  description?: string;
  statusGoal: StatusGoal;
  restartPolicy: RestartPolicy;
  /** Seconds the next group waits for this group's goals. */
  timeout: number;
  autoRecovery: AutoRecovery;
}

export interface StorageVolume {
  name: string;
  persistence: 'permanent' | 'revision' | 'boot';
  disk?: string;
}

export interface PlatformSpec {
  name: string;
  group: string;
  statusGoal: StatusGoal;
  restartPolicy: RestartPolicy;
  autoRecovery: AutoRecovery;
  roles: string[];
  /** State key of the lxc config, e.g. "app/lxc.container.conf". */
  configKey: string;
  /** State key of the root volume, e.g. "app/root.squashfs"; `dm:` handled as a plain volume (no dm-verity here). */
  rootVolumeKey: string;
  /** Optional read-only layers over the root volume (`root.ovl.squashfs`), lowest first. */
  layerKeys: string[];
  /** State keys of run.json `volumes`: extra squashfs images, each mounted read-only at /volumes/<c>/<file>. */
  volumeKeys: string[];
  storage: StorageVolume[];
  /** `_config/<c>/…` keys, overlaid into the container root. */
  configFileKeys: string[];
}

export interface RevisionPlan {
  groups: Group[];
  platforms: PlatformSpec[];
}

const NO_RECOVERY: AutoRecovery = { policy: 'no', maxRetries: 0, retryDelay: 0, backoffFactor: 1 };

const APP_RECOVERY: AutoRecovery = { policy: 'on-failure', maxRetries: 5, retryDelay: 5, backoffFactor: 2 };

function isObject(v: unknown): v is Record<string, unknown> {
  return isJsonObject(v as JsonValue);
}

function num(v: unknown, fallback: number, where: string): number {
  if (v === undefined) return fallback;
  const n = v instanceof JsonNumber ? Number(v.text) : typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new InvalidInputError('bad-state', `${where}: '${String(v)}' is not a non-negative number (State JSON has bad format)`);
  return n;
}

function autoRecovery(v: unknown, base: AutoRecovery, where: string): AutoRecovery {
  if (v === undefined) return base;
  if (!isObject(v)) throw new InvalidInputError('bad-state', `${where}: auto_recovery must be an object (State JSON has bad format)`);
  const policy = (v.policy ?? v.type ?? base.policy) as string;
  if (!['no', 'always', 'on-failure', 'unless-stopped'].includes(policy)) {
    throw new InvalidInputError('bad-state', `${where}: auto_recovery policy '${policy}' is not no, always, on-failure or unless-stopped`);
  }
  return {
    policy: policy as RecoveryPolicy,
    maxRetries: num(v.max_retries, base.maxRetries, `${where}.max_retries`),
    retryDelay: num(v.retry_delay, base.retryDelay, `${where}.retry_delay`),
    backoffFactor: num(v.backoff_factor, base.backoffFactor, `${where}.backoff_factor`),
  };
}

/**
 * Resolve groups and containers of a state. Structure is checked by the revision core (checkState); the
 * first error refuses the revision with Pantavisor's "State JSON has bad format".
 */
export function planRevision(state: State): RevisionPlan {
  const report = checkState(state, { requireBsp: false });
  if (report.errors.length) {
    const e = report.errors[0];
    throw new InvalidInputError('bad-state', `State JSON has bad format: ${e.key ? `${e.key}: ` : ''}${e.message}`);
  }
  const core = groupsOf(state);
  const rawGroups = core.source === 'device.json' ? ((state['device.json'] as JsonObject).groups as JsonValue[]) : core.source === 'groups.json' ? (state['groups.json'] as JsonValue[]) : [];
  const groups: Group[] = core.groups.map((g, i) => ({
    ...g,
    autoRecovery:
      core.source === 'default'
        ? g.name === 'app'
          ? APP_RECOVERY
          : NO_RECOVERY
        : autoRecovery((rawGroups[i] as JsonObject | undefined)?.auto_recovery, NO_RECOVERY, `${core.source} group '${g.name}'`),
  }));
  const byName = new Map(groups.map((g) => [g.name, g]));
  const assigned = containerGroups(state, core);

  const platforms = containerNames(state).map((name): PlatformSpec => {
    const run = state[`${name}/run.json`] as JsonObject;
    const where = `${name}/run.json`;
    const g = byName.get(assigned.get(name)!)!;

    // Volume names become directories under /volumes/<c>/, beside root.squashfs, rootfs and .skel, and words
    // of the mount scripts: letters, digits and . _ + - only (as pvr names them), never hidden, never rootfs.
    const volumeDir = (vol: string, what: string): string => {
      if (!/^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$/.test(vol) || vol === 'rootfs') {
        throw new InvalidInputError('bad-state', `State JSON has bad format: ${where}: ${what} '${vol}' cannot be used as a volume directory (letters, digits and . _ + - only)`);
      }
      return vol;
    };
    // `dm:` (dm-verity) is the one volume handler; the image is mounted plainly here (no device-mapper).
    const handled = (ref: string, what: string): string => {
      const colon = ref.indexOf(':');
      if (colon >= 0 && ref.slice(0, colon) !== 'dm') throw new InvalidInputError('bad-state', `State JSON has bad format: ${where}: ${what} '${ref}' has an unknown handler '${ref.slice(0, colon)}' (only dm: is known)`);
      return volumeDir(ref.slice(colon + 1), what);
    };
    const rootVolume = typeof run['root-volume'] === 'string' ? handled(run['root-volume'], 'root-volume') : 'root.squashfs';
    const storage: StorageVolume[] = [];
    for (const [vol, spec] of Object.entries(isObject(run.storage) ? run.storage : {})) {
      volumeDir(vol, 'storage name');
      const sp = spec as JsonObject;
      storage.push({ name: vol, persistence: sp.persistence as StorageVolume['persistence'], disk: typeof sp.disk === 'string' ? sp.disk : undefined });
    }
    if (!storage.some((s) => s.name === 'lxc-overlay')) storage.push({ name: 'lxc-overlay', persistence: 'boot' });
    const configKey = `${name}/${typeof run.config === 'string' ? run.config : 'lxc.container.conf'}`;
    for (const key of [configKey, `${name}/${rootVolume}`]) {
      if (!isSha256(state[key])) throw new InvalidInputError('bad-state', `State JSON has bad format: ${where}: '${key}' is not an object of this state`);
    }
    const volumeKeys: string[] = [];
    for (const v of Array.isArray(run.volumes) ? run.volumes : []) {
      const file = handled(String(v), 'volume');
      const key = `${name}/${file}`;
      if (!isSha256(state[key])) throw new InvalidInputError('bad-state', `State JSON has bad format: ${where}: volume '${key}' is not an object of this state`);
      if (storage.some((s) => s.name === file) || file === rootVolume || volumeKeys.includes(key)) {
        throw new InvalidInputError('bad-state', `State JSON has bad format: ${where}: volume '${file}' is listed twice, or is also the root volume or a storage volume`);
      }
      volumeKeys.push(key);
    }
    const ovl = `${name}/root.ovl.squashfs`;
    return {
      name,
      group: g.name,
      statusGoal: (run.status_goal as StatusGoal | undefined) ?? g.statusGoal,
      restartPolicy: restartPolicyOf(state, name, core) ?? g.restartPolicy,
      autoRecovery: autoRecovery(run.auto_recovery, g.autoRecovery, `${where} auto_recovery`),
      roles: Array.isArray(run.roles) ? run.roles.filter((r): r is string => typeof r === 'string') : [],
      configKey,
      rootVolumeKey: `${name}/${rootVolume}`,
      layerKeys: isSha256(state[ovl]) ? [ovl] : [],
      volumeKeys,
      storage,
      configFileKeys: Object.keys(state)
        .filter((k) => k.startsWith(`_config/${name}/`))
        .sort(),
    };
  });
  // Start order: by group order, then by name.
  const order = new Map(groups.map((g, i) => [g.name, i]));
  platforms.sort((a, b) => order.get(a.group)! - order.get(b.group)! || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { groups, platforms };
}
