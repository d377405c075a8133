import { detectApps } from './detect-apps.ts';
import { detectBsp } from './detect-bsp.ts';
import { detectUpdaterRemovals } from './detect-updaters.ts';
import { PLAN_SPEC, type Plan, type PlanConfig, type PlanContainer, type PlanReview } from './plan.ts';
import type { TreeIndex } from './tree-index.ts';

export interface DetectOptions {
  /** Base container name (default "os"). */
  baseName?: string;
  /** Host initrd file for bsp/pv-initrd.img. */
  initrd?: string | null;
  /** Containers from image payloads (docker/OCI), decided by the caller. */
  images?: PlanContainer[];
  /** `_config` files and review items from the artifact's other payloads. */
  config?: PlanConfig[];
  review?: PlanReview[];
}

const INITS = ['/sbin/init', '/lib/systemd/systemd', '/usr/lib/systemd/systemd', '/init', '/linuxrc'];

/** The plan detected for a root filesystem (and optional boot partition): the default `--write-plan` output. */
export async function detectPlan(rootfs: TreeIndex, boot: TreeIndex | undefined, options: DetectOptions = {}): Promise<Plan> {
  const removed = detectUpdaterRemovals(rootfs);
  const { apps, review: appReview } = await detectApps(rootfs, removed);
  const review = [...(options.review ?? []), ...appReview];
  const init = INITS.find((p) => rootfs.resolve(p)?.type === 'file');
  if (!init) {
    review.push({ item: '/sbin/init', kind: 'unknown', reason: `no init found (${INITS.join(', ')}); set containers[0].init in the plan`, file: null });
  }
  const base: PlanContainer = {
    name: options.baseName ?? 'os',
    kind: 'base',
    group: 'root',
    restart_policy: 'system',
    paths: [],
    init: [init ?? '/sbin/init'],
    env: {},
    workdir: null,
    storage: { 'lxc-overlay': 'boot' },
    origin: 'root filesystem',
  };
  const taken = new Set([base.name]);
  const others = [...apps, ...(options.images ?? [])].map((c) => {
    // A detected app named like the base (an /opt/os tree) gets a suffix rather than clobbering it.
    let name = c.name;
    for (let i = 2; taken.has(name); i++) name = `${c.name}-${i}`;
    taken.add(name);
    return { ...c, name };
  });
  return {
    '#spec': PLAN_SPEC,
    bsp: detectBsp(rootfs, boot, options.initrd ?? null),
    containers: [base, ...others],
    config: options.config ?? [],
    removed,
    review,
  };
}
