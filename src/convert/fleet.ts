import { readdir, mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { TrustOptions } from '../../importers/types.ts';
import { InvalidInputError, fromSystemError } from '../errors.ts';
import { fsyncDir, writeFileAtomically } from '../fs/atomic.ts';
import { canonicalize, type JsonObject } from '../revision/canonical-json.ts';
import { initRepo } from '../revision/pvr-repo.ts';
import { SYSTEM_SPEC, classifyKey, isSha256, type State } from '../revision/state.ts';
import { openSource } from './open-source.ts';
import { unzipIfNeeded } from './inputs.ts';
import { convertInto, planFor, readPlan, refuseExisting, removeOnSignal, workDirFor, type ConvertReport } from './pipeline.ts';
import { silentProgress, type Progress } from './progress.ts';
import { diffStates } from '../revision/diff.ts';

export interface FleetOptions {
  trust: TrustOptions;
  planFile?: string;
  initrd?: string;
  progress?: Progress;
}

export interface FleetStep {
  /** Directory of this release's revision inside the fleet directory. */
  revision: string;
  source: JsonObject;
  state: string;
  artifactBytes: number;
  bytesToShip: number;
  /** bytesToShip / artifactBytes. */
  ratio: number;
  reboot: boolean;
  rebootKey?: string;
  changedKeys: string[];
  changedObjects: string[];
}

export interface FleetReport {
  dir: string;
  objects: number;
  bytes: number;
  steps: FleetStep[];
  releases: Pick<ConvertReport, 'revision' | 'containers' | 'removed' | 'review' | 'objects' | 'bytes'>[];
}

/** Inputs in series order: files as given; a directory's files and a zip's members by name, numbers compared as numbers. */
async function expandInputs(inputs: string[], work: string): Promise<{ file: string; display: string }[]> {
  const out: { file: string; display: string }[] = [];
  let n = 0;
  for (const input of inputs) {
    const st = await stat(input).catch((err: unknown) => {
      throw fromSystemError(err, input);
    });
    if (st.isDirectory()) {
      const names = (await readdir(input)).filter((f) => !f.startsWith('.')).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
      for (const name of names) {
        const file = join(input, name);
        if ((await stat(file)).isFile()) out.push(...(await unzipIfNeeded(file, await mkdirIn(work, n++))));
      }
    } else {
      out.push(...(await unzipIfNeeded(input, await mkdirIn(work, n++))));
    }
  }
  if (out.length === 0) throw new InvalidInputError('fleet-empty', 'no release files found', { file: inputs.join(' ') });
  return out;
}

async function mkdirIn(work: string, n: number): Promise<string> {
  const d = join(work, `in-${n}`);
  await mkdir(d);
  return d;
}

function revisionName(index: number, source: JsonObject): string {
  const label = String(source.version ?? source.name ?? source.file ?? 'release').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '');
  return `${String(index + 1).padStart(3, '0')}-${label || 'release'}`;
}

/**
 * `pvmigrate fleet`: convert a release series in order into `<out>/objects/` (shared, so unchanged parts
 * cost nothing) and one pvr revision per release `<out>/<NNN-version>/.pvr/`, reporting each step's cost.
 * A series mixing device types (compatible lists) is refused. Built in a temp directory renamed at the end.
 */
export async function fleet(inputs: string[], out: string, options: FleetOptions): Promise<FleetReport> {
  await refuseExisting(out);
  const work = await workDirFor(out);
  const disarm = removeOnSignal(work);
  const progress = options.progress ?? silentProgress;
  try {
    const files = await expandInputs(inputs, work);
    const root = join(work, 'fleet');
    const objectsDir = join(root, 'objects');
    await mkdir(objectsDir, { recursive: true });
    const fixedPlan = options.planFile ? await readPlan(options.planFile) : undefined;
    const steps: FleetStep[] = [];
    const releases: FleetReport['releases'] = [];
    const sizes = new Map<string, number>();
    let prev: State = { '#spec': SYSTEM_SPEC };
    let compatible: string[] | undefined;
    let firstFile = '';
    for (const [i, input] of files.entries()) {
      const scratch = join(work, `scratch-${i}`);
      await mkdir(scratch);
      const src = await progress.phase(`read ${input.display}`, () => openSource(input.file, options.trust, scratch, input.display));
      try {
        const devices = [...src.info.compatible].sort();
        if (compatible === undefined) {
          compatible = devices;
          firstFile = input.display;
        } else if (JSON.stringify(devices) !== JSON.stringify(compatible)) {
          throw new InvalidInputError(
            'fleet-device-mix',
            `device types [${devices.join(', ')}] differ from [${compatible.join(', ')}] of ${firstFile}; a release series must target one device type — convert each device type as its own fleet`,
            { file: input.display },
          );
        }
        const plan = fixedPlan ? structuredClone(fixedPlan) : await planFor(src, options);
        if (options.initrd) plan.bsp.initrd = resolve(options.initrd);
        const name = revisionName(i, { ...src.info } as unknown as JsonObject);
        const repoDir = join(root, name);
        const repo = await initRepo(repoDir, { objectsDir });
        // pvr resolves a relative ObjectsDir against the repo: the fleet directory stays movable.
        await writeFileAtomically(join(repoDir, '.pvr', 'config'), canonicalize({ ObjectsDir: '../objects' }));
        const { state, objects, report } = await convertInto(repo, src, plan, {
          planFile: options.planFile,
          scratch,
          progress,
          repoPath: join(resolve(out), name),
          reviewPath: join(resolve(out), `${name}.pvmigrate`),
          reviewDir: join(root, `${name}.pvmigrate`),
        });
        for (const o of objects) sizes.set(o.sha256, o.bytes);
        const step = await diffStates(prev, state, async (sha) => sizes.get(sha));
        // Keys the runtime acts on: tooling metadata (pvmigrate/build.json: new version, new hash) changes every release.
        const changedKeys = [...step.added, ...step.removed, ...step.changed].filter((k) => classifyKey(k, (state[k] ?? prev[k])!) !== 'ignored').sort();
        steps.push({
          revision: name,
          source: report.source,
          state: report.revision,
          artifactBytes: src.info.size,
          bytesToShip: step.bytesToShip,
          ratio: src.info.size > 0 ? step.bytesToShip / src.info.size : 0,
          reboot: step.reboot,
          ...(step.rebootReasons[0] ? { rebootKey: step.rebootReasons[0].key } : {}),
          changedKeys,
          changedObjects: changedKeys.filter((k) => isSha256(state[k])),
        });
        const { revision, containers, removed, review, objects: n, bytes } = report;
        releases.push({ revision, containers, removed, review, objects: n, bytes });
        prev = state;
      } finally {
        await src.close();
        await rm(scratch, { recursive: true, force: true });
      }
    }
    await rename(root, out);
    await fsyncDir(dirname(resolve(out)));
    return { dir: resolve(out), objects: sizes.size, bytes: [...sizes.values()].reduce((a, b) => a + b, 0), steps, releases };
  } finally {
    await rm(work, { recursive: true, force: true });
    disarm();
  }
}
