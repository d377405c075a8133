import { createHash } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { TrustOptions } from '../../importers/types.ts';
import { EnvironmentError, InvalidInputError, PvError, fromSystemError } from '../errors.ts';
import { fsyncDir, writeFileAtomically } from '../fs/atomic.ts';
import { canonicalBytes, type JsonObject } from '../revision/canonical-json.ts';
import { initRepo, type PvrRepo } from '../revision/pvr-repo.ts';
import { Split, type Accounting } from '../split/assign.ts';
import { planSizes } from '../split/sizes.ts';
import { detectPlan } from '../split/detect.ts';
import { PLAN_SPEC, validatePlan, type Plan, type PlanContainer } from '../split/plan.ts';
import { buildRevision, type ObjectRef, type PayloadContent } from './build-revision.ts';
import { classifyExtras } from './classify.ts';
import { imageContainer } from './image-plan.ts';
import { openInput } from './inputs.ts';
import type { OpenedSource } from './open-source.ts';
import { signRevision, type SignRequest } from './sign.ts';
import { silentProgress, type Progress } from './progress.ts';
import { readJsonFile } from '../util/json-file.ts';
import { provideRuntimeInitrd } from './runtime-initrd.ts';

export interface ConvertOptions {
  trust: TrustOptions;
  /** Convert with this (edited) plan instead of the detected one. */
  planFile?: string;
  /** Host file for bsp/pv-initrd.img (overrides the plan's). */
  initrd?: string;
  /** Also write a pvr export tarball (.tgz/.tar.gz gzip-compressed). */
  exportFile?: string;
  /** Sign the revision (pvs@2). */
  sign?: SignRequest;
  progress?: Progress;
}

export interface ContainerReport {
  name: string;
  group: string;
  /** Objects this container adds (its root.squashfs is the base's object for apps, so not counted again). */
  objects: number;
  bytes: number;
}

export interface ConvertReport {
  /** sha256 of the canonical state: the revision's identity. */
  revision: string;
  repo: string;
  source: JsonObject;
  bsp: { files: Record<string, { sha256: string; bytes: number }>; objects: number; bytes: number };
  containers: ContainerReport[];
  /** Each removal with the bytes of source content it takes out. */
  removed: (Plan['removed'][number] & { bytes: number })[];
  review: (Plan['review'][number] & { extracted: string | null })[];
  accounting: Accounting;
  objects: number;
  bytes: number;
  warnings: string[];
}

/** A directory beside `out` for everything temporary, so the final rename stays on one filesystem. */
export async function workDirFor(out: string): Promise<string> {
  const parent = dirname(resolve(out));
  await mkdir(parent, { recursive: true }).catch((err: unknown) => {
    throw fromSystemError(err, parent);
  });
  return mkdtemp(join(parent, `.${basename(out)}.pvmigrate-`));
}

/**
 * Remove `dir` if the process is interrupted (Ctrl-C, SIGTERM) before the work finishes, then let the signal
 * take its default course; `finally` blocks do not run on a signal. Returns the function that disarms it.
 */
export function removeOnSignal(dir: string): () => void {
  const handler = (signal: NodeJS.Signals) => {
    disarm();
    rmSync(dir, { recursive: true, force: true });
    process.kill(process.pid, signal);
  };
  const disarm = () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return disarm;
}

/** Review extracts and the plan live beside the repo: `<repo>.pvmigrate/`. */
export function reviewPathFor(out: string): string {
  return `${resolve(out)}.pvmigrate`;
}

export async function refuseExisting(out: string, alsoCheck: string[] = []): Promise<void> {
  for (const path of [out, ...alsoCheck]) {
    const exists = await lstat(path).then(
      () => true,
      () => false,
    );
    if (exists) throw new EnvironmentError('output-exists', 'already exists; choose a new output directory or remove it first', { file: path });
  }
}

/** Detected plan for an opened source (the `--write-plan` document). */
export async function planFor(src: OpenedSource, options: { initrd?: string }): Promise<Plan> {
  const plan: Plan = src.hasRootfs
    ? await detectPlan(src.rootfs, src.boot, { initrd: options.initrd ? resolve(options.initrd) : null })
    : { '#spec': PLAN_SPEC, bsp: { kernel: null, fit: null, dtbs: [], modules: [], firmware: null, initrd: null }, containers: [], config: [], removed: [], review: [] };
  const { config, review } = await classifyExtras(src.extras, plan.containers);
  plan.config = config;
  plan.review = [...review, ...plan.review];
  const taken = new Set(plan.containers.map((c) => c.name));
  for (const [payload, image] of src.images) {
    const { container, review: notes } = imageContainer(image, payload, taken);
    plan.containers.push(container);
    plan.review.push(...notes);
  }
  if (src.hasRootfs && !plan.bsp.initrd && !plan.bsp.fit) {
    // The image's own initrd boots the old OS, not the runtime; without one the revision does not validate.
    plan.review.push({ item: 'bsp/pv-initrd.img', kind: 'unknown', reason: 'no runtime initrd given: the runtime\'s own is built at conversion when the kernel is for this machine\'s architecture; else convert with --initrd FILE', file: null });
  }
  return validatePlan(plan);
}

/** A plan lists paths and containers; anything bigger is not one (and is not read into memory). */
const MAX_PLAN_BYTES = 16 * 1024 * 1024;

export async function readPlan(file: string): Promise<Plan> {
  const doc = await readJsonFile(file, { code: 'bad-plan', what: 'a plan', maxBytes: MAX_PLAN_BYTES, hint: 'fix the plan or write a fresh one with --write-plan' });
  return validatePlan(doc, file);
}

export interface RepoBuild {
  state: JsonObject;
  objects: ObjectRef[];
  report: ConvertReport;
}

/**
 * Build one revision of an opened source into `repo` (already initialised in a temp location): objects,
 * state; review extracts and the plan in `reviewDir` (beside the repo, never inside its working tree where a
 * later `pvr commit` would pick them up). Used by convert and by fleet (shared object store).
 */
export async function convertInto(
  repo: PvrRepo,
  src: OpenedSource,
  plan: Plan,
  options: {
    planFile?: string;
    scratch: string;
    progress: Progress;
    /** Final paths, for the report. */
    repoPath: string;
    reviewPath: string;
    /** Where review material is written now (renamed to reviewPath with the repo). */
    reviewDir: string;
    sign?: SignRequest;
  },
): Promise<RepoBuild> {
  await provideRuntimeInitrd(plan, src, options.scratch);
  const split = Split.apply(plan, src.rootfs, src.boot, options.planFile);
  const extras = new Map(src.extras.map((e) => [e.name, e]));
  const payloads = new Map<string, PayloadContent>();
  for (const e of src.extras) {
    payloads.set(e.name, {
      open(member) {
        if (member === null) return e.stream();
        const entry = e.tree?.get(member);
        if (!e.tree || entry?.type !== 'file') throw new InvalidInputError('bad-plan', `config names member ${member} of ${e.name}, which is not a file there`);
        return e.tree.tree.open(entry);
      },
    });
  }
  const imageTree = (c: PlanContainer) => {
    const image = src.images.get(c.payload ?? '');
    if (!image) throw new InvalidInputError('bad-plan', `container ${c.name} names image ${c.payload}, which the input does not hold`, { file: options.planFile });
    return image.open();
  };
  const built = await buildRevision({ split, boot: src.boot, source: src.info, payloads, imageTree, repo, scratch: options.scratch, progress: options.progress });
  if (options.sign) built.state = await signRevision(built.state, options.sign);
  await repo.writeState(built.state);

  // Review items keep their content beside the revision, never silently dropped.
  const { reviewDir } = options;
  const review: ConvertReport['review'] = [];
  for (const item of plan.review) {
    const extra = extras.get(item.item);
    if (!item.file || !extra) {
      review.push({ ...item, extracted: null });
      continue;
    }
    const target = join(reviewDir, item.file);
    await mkdir(dirname(target), { recursive: true });
    await pipeline(extra.stream(), createWriteStream(target)).catch((err: unknown) => {
      throw err instanceof PvError ? err : fromSystemError(err, target);
    });
    review.push({ ...item, extracted: join(options.reviewPath, item.file) });
  }
  if (plan.review.length > 0 || plan.removed.length > 0) {
    await mkdir(reviewDir, { recursive: true });
    await writeFileAtomically(join(reviewDir, 'plan.json'), JSON.stringify(plan, null, 2) + '\n');
  }

  const stateBytes = canonicalBytes(built.state);
  const seen = new Set<string>();
  const owned = (keys: (k: string) => boolean) => {
    let objects = 0;
    let bytes = 0;
    for (const o of built.objects) {
      if (!keys(o.key) || seen.has(o.sha256)) continue;
      seen.add(o.sha256);
      objects++;
      bytes += o.bytes;
    }
    return { objects, bytes };
  };
  const bspFiles: ConvertReport['bsp']['files'] = {};
  for (const o of built.objects) if (o.key.startsWith('bsp/')) bspFiles[o.key.slice(4)] = { sha256: o.sha256, bytes: o.bytes };
  const bsp = { files: bspFiles, ...owned((k) => k.startsWith('bsp/')) };
  const base = plan.containers.find((c) => c.kind === 'base');
  const ordered = [...(base ? [base] : []), ...plan.containers.filter((c) => c !== base)];
  const containers = ordered.map((c) => ({ name: c.name, group: c.group, ...owned((k) => k.startsWith(`${c.name}/`) || k.startsWith(`_config/${c.name}/`)) }));
  const all = new Map(built.objects.map((o) => [o.sha256, o.bytes]));
  const report: ConvertReport = {
    revision: createHash('sha256').update(stateBytes).digest('hex'),
    repo: options.repoPath,
    source: built.state['pvmigrate/build.json'] as JsonObject,
    bsp,
    containers,
    removed: planSizes(split).removed.map((r, i) => ({ ...plan.removed[i]!, bytes: r.bytes })),
    review,
    accounting: split.account(),
    objects: all.size,
    bytes: [...all.values()].reduce((a, b) => a + b, 0),
    warnings: src.warnings,
  };
  return { state: built.state, objects: built.objects, report };
}

/**
 * `pvmigrate convert`: input → plan → objects → state → repo at `out`. Everything is built in a temp
 * directory beside `out` and renamed into place at the end; on any failure nothing is left behind.
 */
export async function convert(input: string, out: string, options: ConvertOptions): Promise<ConvertReport> {
  await refuseExisting(out, [reviewPathFor(out)]);
  const work = await workDirFor(out);
  const disarm = removeOnSignal(work);
  const progress = options.progress ?? silentProgress;
  try {
    const src = await openInput(input, work, options.trust, progress);
    const scratch = join(work, 'scratch');
    try {
      const plan = options.planFile ? await readPlan(options.planFile) : await planFor(src, options);
      if (options.initrd) plan.bsp.initrd = resolve(options.initrd);
      const repoDir = join(work, 'repo');
      const repo = await initRepo(repoDir);
      const reviewDir = join(work, 'review');
      const reviewPath = reviewPathFor(out);
      const { report } = await convertInto(repo, src, plan, { planFile: options.planFile, scratch, progress, repoPath: resolve(out), reviewPath, reviewDir, sign: options.sign });
      if (options.exportFile) {
        const { exportRepo } = await import('../revision/export.ts');
        await progress.phase(`export ${options.exportFile}`, () => exportRepo(repo, options.exportFile!));
      }
      // The review material first: if the repo rename failed we remove it again, so both or neither exist.
      const hasReview = await lstat(reviewDir).then(() => true, () => false);
      if (hasReview) await rename(reviewDir, reviewPath);
      try {
        await rename(repoDir, out);
      } catch (err) {
        if (hasReview) await rm(reviewPath, { recursive: true, force: true });
        throw fromSystemError(err, out);
      }
      await fsyncDir(dirname(resolve(out)));
      return report;
    } finally {
      await src.close();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
    disarm();
  }
}

/** `--write-plan`: the detected plan for an input, written atomically; no repo is made. */
export async function writePlan(input: string, planOut: string, options: ConvertOptions): Promise<Plan> {
  const work = await workDirFor(planOut);
  const disarm = removeOnSignal(work);
  try {
    const src = await openInput(input, work, options.trust, silentProgress);
    try {
      const plan = await planFor(src, options);
      await writeFileAtomically(planOut, JSON.stringify(plan, null, 2) + '\n');
      return plan;
    } finally {
      await src.close();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
    disarm();
  }
}
