import type { JsonObject } from '../revision/canonical-json.ts';
import type { PlanContainer } from '../split/plan.ts';
import { volumeName } from './lxc-config.ts';

/**
 * <container>/run.json as pvr writes it for a docker-made container (#spec, config, name, root-volume, storage,
 * type, volumes), plus group and restart_policy from the plan. Storage keys of the plan are pvr's
 * "persistence" map: "lxc-overlay" or an absolute path persisted as volume docker-<path>.
 */
export function containerRunJson(c: PlanContainer): JsonObject {
  const storage: JsonObject = {};
  for (const [key, persistence] of Object.entries(c.storage)) {
    storage[key.startsWith('/') ? volumeName(key) : key] = { persistence };
  }
  if (!('lxc-overlay' in storage)) storage['lxc-overlay'] = { persistence: 'boot' };
  return {
    '#spec': 'service-manifest-run@1',
    config: 'lxc.container.conf',
    group: c.group,
    name: c.name,
    restart_policy: c.restart_policy,
    'root-volume': 'root.squashfs',
    ...(c.status_goal && { status_goal: c.status_goal }),
    storage,
    type: 'lxc',
    volumes: [],
  };
}

export interface BspFiles {
  linux?: string;
  fit?: string;
  initrd?: string;
  fdt?: string;
  modules?: string;
  firmware?: string;
}

/** bsp/run.json: paths relative to bsp/ (pantavisor-state-format-v2). */
export function bspRunJson(files: BspFiles): JsonObject {
  const doc: JsonObject = { addons: [], initrd_config: '' };
  for (const [k, v] of Object.entries(files)) if (v !== undefined) doc[k] = v;
  return doc;
}
