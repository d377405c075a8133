import type { Split } from './assign.ts';
import { isUnder } from './tree-index.ts';

export interface PlanSizes {
  bsp: number;
  containers: Record<string, number>;
  removed: { path: string; bytes: number }[];
}

/**
 * Bytes of source content per destination of a split (file sizes; metadata-only entries count 0), so the
 * user sees what each choice weighs before anything is compressed or written.
 */
export function planSizes(split: Split): PlanSizes {
  // An image-only revision (docker/OCI input) has no base container and an empty root filesystem.
  const base = split.plan.containers.find((c) => c.kind === 'base')?.name;
  const sizes: PlanSizes = { bsp: 0, containers: Object.fromEntries(split.plan.containers.map((c) => [c.name, 0])), removed: [] };
  const removedBytes = new Map(split.plan.removed.map((r) => [r.path, 0]));
  for (const e of split.rootfs.entries) {
    const bytes = e.type === 'file' ? e.size : 0;
    const d = split.destination(e.path);
    if (d.to === 'bsp') sizes.bsp += bytes;
    else if (d.to === 'app') sizes.containers[d.name]! += bytes;
    else if (d.to === 'base') {
      if (base) sizes.containers[base]! += bytes;
    }
    else {
      // Credit the removal entry that covers this path (the longest, when entries nest).
      const owner = split.plan.removed
        .filter((r) => isUnder(e.path, r.path))
        .sort((a, b) => b.path.length - a.path.length)[0];
      if (owner) removedBytes.set(owner.path, removedBytes.get(owner.path)! + bytes);
    }
  }
  sizes.removed = [...removedBytes].map(([path, bytes]) => ({ path, bytes }));
  return sizes;
}
