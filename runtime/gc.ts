/**
 * Garbage collection as PV:storage.c pv_storage_gc_run: remove trails, logs and revision disks of every
 * revision except the running one, the update in progress (pv_try, or a LOCAL_RUN waiting for its objects),
 * the last committed (pv_rev) and, when
 * asked, the factory revision; then delete every object no kept revision references and no trail links.
 */
import { readdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { parseJson, isJsonObject } from '../src/revision/canonical-json.ts';
import { objectRefs } from '../src/revision/state.ts';
import type { Storage } from './storage.ts';

export interface GcResult {
  reclaimed: number;
  removedRevisions: string[];
  removedObjects: number;
}

export async function collectGarbage(storage: Storage, keep: { current?: string; pending?: string; keepFactory?: boolean } = {}): Promise<GcResult> {
  const env = await storage.readBootEnv().catch(() => undefined);
  const kept = new Set([keep.current, keep.pending, env?.pv_rev, env?.pv_try, keep.keepFactory ? '0' : undefined].filter((r): r is string => !!r));
  const removedRevisions: string[] = [];
  const needed = new Set<string>();
  for (const rev of await storage.listRevisions()) {
    if (kept.has(rev)) {
      const value = parseJson(await storage.readStateText(rev), storage.statePath(rev));
      if (isJsonObject(value)) for (const sha of objectRefs(value).keys()) needed.add(sha);
      continue;
    }
    await rm(storage.trailDir(rev), { recursive: true, force: true });
    await rm(storage.logsDir(rev), { recursive: true, force: true });
    await rm(join(storage.root, 'disks', 'rev', rev), { recursive: true, force: true });
    removedRevisions.push(rev);
  }
  let reclaimed = 0;
  let removedObjects = 0;
  for (const name of await readdir(storage.objectsDir).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{64}$/.test(name) || needed.has(name)) continue;
    const path = join(storage.objectsDir, name);
    const st = await stat(path).catch(() => undefined);
    if (!st || st.nlink > 1) continue; // still linked from a trail
    await unlink(path);
    reclaimed += st.size;
    removedObjects++;
  }
  return { reclaimed, removedRevisions, removedObjects };
}
