import { InvalidInputError } from '../errors.ts';

/**
 * The split plan: which parts of the source become the BSP, the base OS container, app containers and
 * `_config` files, what is removed (the old updater) and what the user must review. Plain JSON so it can
 * be written with `--write-plan`, edited and given back with `--plan`.
 *
 * Paths starting with "/" name entries of the root filesystem; "boot:/…" names entries of the vfat boot
 * partition when the source has one. Every path list is a list of prefixes: a directory stands for
 * itself and everything below it.
 */
export const PLAN_SPEC = 'pvmigrate-plan@1';

export type Group = 'data' | 'root' | 'platform' | 'app';
export type RestartPolicy = 'system' | 'container';
export type Persistence = 'permanent' | 'revision' | 'boot';

export interface PlanBsp {
  /** Kernel image (vmlinuz, Image, zImage, uImage) → bsp/kernel.img; null when a FIT carries it. */
  kernel: string | null;
  /** FIT image → bsp/pantavisor.fit, replacing kernel/initrd/fdt. */
  fit: string | null;
  /** Device trees → bsp/<basename>; the first is the `fdt`. */
  dtbs: string[];
  /** Kernel module trees (/lib/modules/<ver>) → bsp/modules.squashfs, rooted at /lib/modules. */
  modules: string[];
  /** Firmware tree (/lib/firmware) → bsp/firmware.squashfs, rooted there. */
  firmware: string | null;
  /** Host file used as bsp/pv-initrd.img (`--initrd FILE` or the runtime's initrd). */
  initrd: string | null;
}

export interface PlanContainer {
  name: string;
  /** base: the rest of the root filesystem; app: the base image plus a layer holding `paths`; image: a docker/OCI image archive. */
  kind: 'base' | 'app' | 'image';
  group: Group;
  restart_policy: RestartPolicy;
  /** app: prefixes its layer holds (removed from the base); base: empty. */
  paths: string[];
  /** image: the payload it comes from. */
  payload?: string;
  /** Argument vector of the container's init (lxc.init.cmd). */
  init: string[];
  env: Record<string, string>;
  workdir: string | null;
  /** pvr's persistence map: "lxc-overlay" or an absolute path (volume `docker-<path, / as ->`) → persistence. */
  storage: Record<string, Persistence>;
  /** Where the app was found: "init script /etc/init.d/S90x", "systemd unit …", "inittab line …". */
  origin?: string;
  /** Status goal in run.json; absent = the group's default. */
  status_goal?: 'MOUNTED' | 'STARTED' | 'READY';
}

/** A module payload or file that becomes `_config/<container>/<path>`. */
export interface PlanConfig {
  payload: string;
  /** Member inside the payload, or null when the payload is the file itself. */
  member: string | null;
  container: string;
  path: string;
}

export type UpdaterName = 'mender' | 'rauc' | 'swupdate';

export interface PlanRemoval {
  path: string;
  updater: UpdaterName;
  what: string;
}

export interface PlanReview {
  /** Payload name, or a root filesystem path for items found inside it. */
  item: string;
  kind: 'script' | 'bootenv' | 'raw' | 'deb' | 'rpm' | 'module' | 'inittab' | 'unknown';
  reason: string;
  /** Where the content is extracted, relative to the review directory beside the repo; null when nothing to extract. */
  file: string | null;
}

export interface Plan {
  '#spec': typeof PLAN_SPEC;
  bsp: PlanBsp;
  containers: PlanContainer[];
  config: PlanConfig[];
  removed: PlanRemoval[];
  review: PlanReview[];
}

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const GROUPS: readonly Group[] = ['data', 'root', 'platform', 'app'];
const POLICIES: readonly RestartPolicy[] = ['system', 'container'];
const PERSISTENCE: readonly Persistence[] = ['permanent', 'revision', 'boot'];
const UPDATERS: readonly UpdaterName[] = ['mender', 'rauc', 'swupdate'];
const REVIEW_KINDS: readonly PlanReview['kind'][] = ['script', 'bootenv', 'raw', 'deb', 'rpm', 'module', 'inittab', 'unknown'];

/** A source path: "/abs/path" (root filesystem) or "boot:/abs/path", normalised, no "." or ".." parts. */
export function isSourcePath(p: unknown): p is string {
  if (typeof p !== 'string') return false;
  const path = p.startsWith('boot:') ? p.slice(5) : p;
  if (!path.startsWith('/') || path.includes('\0')) return false;
  if (path === '/') return true;
  return path.slice(1).split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/** Checks a plan's shape and internal consistency; every problem is named with its JSON location. */
export function validatePlan(doc: unknown, file?: string): Plan {
  const problems: string[] = [];
  const fail = (where: string, what: string) => problems.push(`${where}: ${what}`);
  const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const strArray = (v: unknown, where: string, check: (s: string) => boolean = () => true, what = 'a string'): string[] => {
    if (!Array.isArray(v)) {
      fail(where, 'must be an array');
      return [];
    }
    v.forEach((s, i) => {
      if (typeof s !== 'string' || !check(s)) fail(`${where}[${i}]`, `must be ${what}`);
    });
    return v as string[];
  };
  const pathOrNull = (v: unknown, where: string) => {
    if (v !== null && !isSourcePath(v)) fail(where, 'must be null or an absolute path ("/…" or "boot:/…") without . or .. parts');
  };

  if (!obj(doc)) throw new InvalidInputError('bad-plan', 'the plan must be a JSON object', { file });
  if (doc['#spec'] !== PLAN_SPEC) fail('#spec', `must be "${PLAN_SPEC}"`);

  const bsp = doc.bsp;
  if (!obj(bsp)) fail('bsp', 'must be an object');
  else {
    pathOrNull(bsp.kernel, 'bsp.kernel');
    pathOrNull(bsp.fit, 'bsp.fit');
    pathOrNull(bsp.firmware, 'bsp.firmware');
    strArray(bsp.dtbs, 'bsp.dtbs', isSourcePath, 'a source path');
    strArray(bsp.modules, 'bsp.modules', isSourcePath, 'a source path');
    if (bsp.initrd !== null && typeof bsp.initrd !== 'string') fail('bsp.initrd', 'must be null or a host file path');
  }

  const names = new Set<string>();
  const containers = Array.isArray(doc.containers) ? doc.containers : (fail('containers', 'must be an array'), []);
  let bases = 0;
  containers.forEach((c: unknown, i: number) => {
    const at = `containers[${i}]`;
    if (!obj(c)) return fail(at, 'must be an object');
    if (typeof c.name !== 'string' || !NAME_RE.test(c.name) || c.name === 'bsp' || c.name.startsWith('_')) {
      fail(`${at}.name`, 'must be 1-63 of a-z 0-9 . _ - starting with a letter or digit, and not "bsp"');
    } else if (names.has(c.name)) fail(`${at}.name`, `"${c.name}" is used twice`);
    else names.add(c.name);
    if (c.kind === 'base') bases++;
    else if (c.kind !== 'app' && c.kind !== 'image') fail(`${at}.kind`, 'must be "base", "app" or "image"');
    if (!GROUPS.includes(c.group as Group)) fail(`${at}.group`, `must be one of ${GROUPS.join(', ')}`);
    if (!POLICIES.includes(c.restart_policy as RestartPolicy)) fail(`${at}.restart_policy`, 'must be "system" or "container"');
    if (c.status_goal !== undefined && !['MOUNTED', 'STARTED', 'READY'].includes(c.status_goal as string)) fail(`${at}.status_goal`, 'must be "MOUNTED", "STARTED" or "READY"');
    const paths = strArray(c.paths, `${at}.paths`, isSourcePath, 'a source path');
    if (c.kind === 'app' && paths.length === 0) fail(`${at}.paths`, 'an app container needs at least one path for its layer');
    if (c.kind === 'base' && paths.length > 0) fail(`${at}.paths`, 'the base container takes the rest of the root filesystem; list no paths');
    if (c.kind === 'image' && typeof c.payload !== 'string') fail(`${at}.payload`, 'an image container names the payload it comes from');
    const init = strArray(c.init, `${at}.init`);
    if (init.length === 0 || !init[0]?.startsWith('/')) fail(`${at}.init`, 'must start with an absolute executable path');
    if (!obj(c.env) || Object.values(c.env).some((v) => typeof v !== 'string')) fail(`${at}.env`, 'must be an object of strings');
    if (c.workdir !== null && (typeof c.workdir !== 'string' || !c.workdir.startsWith('/'))) fail(`${at}.workdir`, 'must be null or an absolute path');
    if (!obj(c.storage)) fail(`${at}.storage`, 'must be an object');
    else {
      for (const [k, v] of Object.entries(c.storage)) {
        if (!/^[A-Za-z0-9._-]+$/.test(k) && !(k.startsWith('/') && isSourcePath(k))) {
          fail(`${at}.storage`, `"${k}" must be a volume name (A-Z a-z 0-9 . _ -) or an absolute path to persist`);
        }
        if (!PERSISTENCE.includes(v as Persistence)) fail(`${at}.storage.${k}`, 'must be "permanent", "revision" or "boot"');
      }
    }
  });
  const images = containers.filter((c: unknown) => obj(c) && c.kind === 'image').length;
  if (bases > 1 || (bases === 0 && images === 0)) fail('containers', `needs one container of kind "base" (found ${bases}), or image containers only`);
  // A root filesystem source boots its own kernel; an image-only plan (a docker/OCI archive) has no BSP.
  if (bases === 1 && obj(bsp) && bsp.kernel === null && bsp.fit === null) fail('bsp', 'needs a kernel or a fit: the runtime cannot boot without one');

  const config = Array.isArray(doc.config) ? doc.config : (fail('config', 'must be an array'), []);
  config.forEach((c: unknown, i: number) => {
    const at = `config[${i}]`;
    if (!obj(c)) return fail(at, 'must be an object');
    if (typeof c.payload !== 'string') fail(`${at}.payload`, 'must name a payload');
    if (c.member !== null && typeof c.member !== 'string') fail(`${at}.member`, 'must be null or a member name');
    if (typeof c.container !== 'string' || !names.has(c.container)) fail(`${at}.container`, `must name a container of the plan (${[...names].join(', ')})`);
    if (!isSourcePath(c.path) || c.path === '/' || (c.path as string).startsWith('boot:')) fail(`${at}.path`, 'must be an absolute file path inside the container');
  });

  const removed = Array.isArray(doc.removed) ? doc.removed : (fail('removed', 'must be an array'), []);
  removed.forEach((r: unknown, i: number) => {
    const at = `removed[${i}]`;
    if (!obj(r)) return fail(at, 'must be an object');
    if (!isSourcePath(r.path) || r.path === '/') fail(`${at}.path`, 'must be an absolute path other than /');
    if (!UPDATERS.includes(r.updater as UpdaterName)) fail(`${at}.updater`, `must be one of ${UPDATERS.join(', ')}`);
    if (typeof r.what !== 'string') fail(`${at}.what`, 'must be a string');
  });

  const review = Array.isArray(doc.review) ? doc.review : (fail('review', 'must be an array'), []);
  review.forEach((r: unknown, i: number) => {
    const at = `review[${i}]`;
    if (!obj(r)) return fail(at, 'must be an object');
    if (typeof r.item !== 'string') fail(`${at}.item`, 'must be a string');
    if (!REVIEW_KINDS.includes(r.kind as PlanReview['kind'])) fail(`${at}.kind`, `must be one of ${REVIEW_KINDS.join(', ')}`);
    if (typeof r.reason !== 'string') fail(`${at}.reason`, 'must be a string');
    if (r.file !== null && (typeof r.file !== 'string' || r.file.startsWith('/') || r.file.split('/').includes('..'))) {
      fail(`${at}.file`, 'must be null or a relative path without ..');
    }
  });

  if (problems.length > 0) {
    const shown = problems.slice(0, 5).join('; ');
    const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : '';
    throw new InvalidInputError('bad-plan', `invalid plan: ${shown}${more}; fix the plan or write a fresh one with --write-plan`, { file });
  }
  return doc as unknown as Plan;
}
