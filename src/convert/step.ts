import { isJsonObject, type JsonValue } from '../revision/canonical-json.ts';
import { DEFAULT_GROUPS, classifyKey, containerNames, isSha256, ownerOf, type State } from '../revision/state.ts';

export interface Step {
  /** Keys added, removed or changed, that the runtime acts on (tooling metadata such as pvmigrate/build.json excluded). */
  changed: string[];
  /** Of those, the object keys (sha values) that changed or appeared. */
  changedObjects: string[];
  /** Bytes of objects the device does not have yet. */
  bytesToShip: number;
  /** Whether the device must reboot (pantavisor-format §9). */
  reboot: boolean;
  /** Why it must reboot: the first key that forces it. */
  rebootKey?: string;
}

function policyOf(state: State, container: string): string {
  const run = state[`${container}/run.json`];
  if (!isJsonObject(run)) return 'system';
  if (typeof run.restart_policy === 'string') return run.restart_policy;
  const group = DEFAULT_GROUPS.find((g) => g.name === run.group);
  return group?.restartPolicy ?? 'system';
}

function same(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * What updating a device from `prev` to `next` costs: changed keys, new object bytes, and whether it
 * reboots — any changed key without an owning container, or owned (on either side) by a container whose
 * restart policy is system, forces a reboot; keys the parser ignores force nothing.
 */
export function compareStates(prev: State, next: State, sizeOf: (sha: string) => number): Step {
  const prevContainers = new Set(containerNames(prev));
  const nextContainers = new Set(containerNames(next));
  const keys = [...new Set([...Object.keys(prev), ...Object.keys(next)])].sort();
  const prevObjects = new Set(Object.values(prev).filter(isSha256));
  const changed: string[] = [];
  const changedObjects: string[] = [];
  let rebootKey: string | undefined;
  for (const key of keys) {
    if (same(prev[key], next[key])) continue;
    const value = next[key] ?? prev[key]!;
    if (classifyKey(key, value) === 'ignored') continue;
    changed.push(key);
    if (isSha256(next[key])) changedObjects.push(key);
    if (rebootKey) continue;
    const owners = [ownerOf(key, prevContainers), ownerOf(key, nextContainers)];
    const systemOwned =
      (owners[0] === undefined && owners[1] === undefined) ||
      (owners[0] !== undefined && policyOf(prev, owners[0]) !== 'container') ||
      (owners[1] !== undefined && policyOf(next, owners[1]) !== 'container');
    if (systemOwned) rebootKey = key;
  }
  let bytesToShip = 0;
  for (const sha of new Set(Object.values(next).filter(isSha256))) if (!prevObjects.has(sha)) bytesToShip += sizeOf(sha);
  return { changed, changedObjects, bytesToShip, reboot: rebootKey !== undefined, rebootKey };
}
