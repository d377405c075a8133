/**
 * Revision A → B: the RFC 7386 merge patch (what `pvr diff` prints), the keys added / removed / changed,
 * the bytes an update must ship (objects of B that A lacks), and whether applying it needs a reboot
 * (PV state.c `pv_state_compare_objects` / `pv_state_compare_jsons`, see reference §9).
 */
import { canonicalize, compareCodePoints, isJsonObject, newJsonObject, type JsonObject, type JsonValue } from './canonical-json.ts';
import { classifyKey, containerNames, objectRefs, ownerOf, restartPolicyOf, type State } from './state.ts';

function same(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return canonicalize(a) === canonicalize(b);
}

/** RFC 7386 merge patch turning `a` into `b` (removed members → null; objects recurse; anything else replaced). */
export function createMergePatch(a: JsonObject, b: JsonObject): JsonObject {
  const patch = newJsonObject();
  for (const k of Object.keys(a)) if (!(k in b)) patch[k] = null;
  for (const [k, bv] of Object.entries(b)) {
    const av = a[k];
    if (av === undefined) patch[k] = bv;
    else if (isJsonObject(av) && isJsonObject(bv)) {
      const sub = createMergePatch(av, bv);
      if (Object.keys(sub).length) patch[k] = sub;
    } else if (!same(av, bv)) patch[k] = bv;
  }
  return patch;
}

/** RFC 7386 MergePatch(target, patch). */
export function applyMergePatch(target: JsonValue, patch: JsonValue): JsonValue {
  if (!isJsonObject(patch)) return patch;
  const out = newJsonObject();
  if (isJsonObject(target)) Object.assign(out, target);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k] ?? null, v);
  }
  return out;
}

export interface RevisionDiff {
  added: string[];
  removed: string[];
  changed: string[];
  /** Sum of the sizes of objects referenced by B and not by A (each object once). */
  bytesToShip: number;
  /** Objects of B not in A whose size could not be determined (not counted in bytesToShip). */
  unknownSizes: string[];
  reboot: boolean;
  /** Keys that force the reboot, with why. */
  rebootReasons: { key: string; reason: string }[];
  /** Containers to stop and restart when no reboot is needed. */
  restartContainers: string[];
  patch: JsonObject;
}

/**
 * Why a changed key needs a reboot on the side where it exists, or undefined when restarting its container
 * is enough. Keys the parser ignores never matter.
 */
function rebootReason(state: State, key: string, containers: Set<string>): string | undefined {
  const owner = ownerOf(key, containers);
  if (owner === undefined) return 'owned by the system (BSP), not by a container';
  const policy = restartPolicyOf(state, owner);
  if (policy === undefined) return `container '${owner}' has no known restart policy`;
  if (policy === 'system') return `container '${owner}' has restart_policy system`;
  return undefined;
}

export async function diffStates(a: State, b: State, sizeOf: (sha: string) => Promise<number | undefined>): Promise<RevisionDiff> {
  const added: string[] = [];
  const removed: string[] = [];
  const changed: string[] = [];
  for (const k of Object.keys(a)) if (!(k in b)) removed.push(k);
  for (const k of Object.keys(b)) {
    if (!(k in a)) added.push(k);
    else if (!same(a[k], b[k])) changed.push(k);
  }
  [added, removed, changed].forEach((l) => l.sort(compareCodePoints));

  const inA = objectRefs(a);
  let bytesToShip = 0;
  const unknownSizes: string[] = [];
  for (const sha of [...objectRefs(b).keys()].sort()) {
    if (inA.has(sha)) continue;
    const size = await sizeOf(sha);
    if (size === undefined) unknownSizes.push(sha);
    else bytesToShip += size;
  }

  const containersA = new Set(containerNames(a));
  const containersB = new Set(containerNames(b));
  const rebootReasons: { key: string; reason: string }[] = [];
  const restart = new Set<string>();
  for (const key of [...added, ...removed, ...changed]) {
    const kind = classifyKey(key, (b[key] ?? a[key]) as JsonValue);
    if (kind === 'ignored') continue;
    const sides: [State, Set<string>][] = [];
    if (key in a) sides.push([a, containersA]);
    if (key in b) sides.push([b, containersB]);
    const reason = sides.map(([s, cs]) => rebootReason(s, key, cs)).find((r) => r !== undefined);
    if (reason) rebootReasons.push({ key, reason });
    else restart.add(ownerOf(key, key in b ? containersB : containersA)!);
  }
  const reboot = rebootReasons.length > 0;
  return {
    added,
    removed,
    changed,
    bytesToShip,
    unknownSizes,
    reboot,
    rebootReasons,
    restartContainers: reboot ? [] : [...restart].sort(compareCodePoints),
    patch: createMergePatch(a, b),
  };
}
