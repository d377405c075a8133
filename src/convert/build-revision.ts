import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { lxcContainerConf } from '../build/lxc-config.ts';
import { bspRunJson, containerRunJson, type BspFiles } from '../build/run-json.ts';
import { SOURCE_KEY, sourceJson, type SourceInfo } from '../build/source-json.ts';
import { filterTree } from '../build/tree-filter.ts';
import { InvalidInputError, fromSystemError } from '../errors.ts';
import { fsyncDir } from '../fs/atomic.ts';
import type { Entry, FileTree } from '../fs/file-tree.ts';
import type { JsonObject } from '../revision/canonical-json.ts';
import type { PvrRepo } from '../revision/pvr-repo.ts';
import { SYSTEM_SPEC } from '../revision/state.ts';
import type { Split } from '../split/assign.ts';
import type { TreeIndex } from '../split/tree-index.ts';
import type { PlanContainer } from '../split/plan.ts';
import { sizeText, type Progress } from './progress.ts';

/** Content for a `_config` key or an image container, supplied by the artifact's payloads. */
export interface PayloadContent {
  open(member: string | null): Readable;
}

export interface RevisionInputs {
  split: Split;
  /** The vfat boot partition, when BSP parts come from it ("boot:/…" paths). */
  boot?: TreeIndex;
  source: SourceInfo;
  payloads: Map<string, PayloadContent>;
  /** Builds the root of an image container (docker/OCI payload) as a FileTree. */
  imageTree?(container: PlanContainer): Promise<FileTree>;
  repo: PvrRepo;
  /** Scratch directory for squashfs images before they become objects. */
  scratch: string;
  progress: Progress;
}

export interface ObjectRef {
  key: string;
  sha256: string;
  bytes: number;
}

export interface BuiltRevision {
  state: JsonObject;
  /** Every object key of the state with its size (shared objects appear under each key). */
  objects: ObjectRef[];
}

async function putStream(inputs: RevisionInputs, data: Readable): Promise<{ sha256: string; bytes: number }> {
  const r = await inputs.repo.putObject(data);
  return { sha256: r.sha256, bytes: r.size };
}

/**
 * Write a squashfs and adopt it as an object: hashed in place, then hard-linked under its name (the scratch
 * directory is beside the object store, so no second copy of a large image is written). An object already
 * present keeps its inode, as the store's own no-clobber publish does.
 */
async function putSquashfs(inputs: RevisionInputs, tree: FileTree, name: string): Promise<{ sha256: string; bytes: number }> {
  const { writeSquashfs } = await import('../fs/squashfs/writer.ts');
  const file = join(inputs.scratch, name.replace(/\//g, '_'));
  try {
    const { size } = await writeSquashfs(tree, file, { comp: 'gzip' });
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) hash.update(chunk);
    const sha256 = hash.digest('hex');
    const target = inputs.repo.objects.path(sha256);
    try {
      await link(file, target);
      await fsyncDir(dirname(target));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EXDEV') return await putStream(inputs, createReadStream(file));
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fromSystemError(err, target);
    }
    return { sha256, bytes: size };
  } finally {
    await rm(file, { force: true });
  }
}

function contentOf(tree: FileTree, index: { get(p: string): Entry | undefined }, path: string): Readable {
  const entry = index.get(path);
  if (!entry || entry.type !== 'file') throw new InvalidInputError('plan-missing-path', `${path} is not a regular file`);
  return tree.open(entry);
}

function dtbName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * Plan + trees → objects in the repo and the state. Deterministic: the order of work and every byte written
 * depend only on the inputs, so the same source gives the same objects and state.
 */
export async function buildRevision(inputs: RevisionInputs): Promise<BuiltRevision> {
  const { split, boot, progress } = inputs;
  const rootfs = split.rootfs.tree;
  const { plan } = split;
  const state: JsonObject = { '#spec': SYSTEM_SPEC };
  const objects: ObjectRef[] = [];
  let note: (text: string) => void = () => undefined;
  const add = (key: string, r: { sha256: string; bytes: number }) => {
    state[key] = r.sha256;
    objects.push({ key, sha256: r.sha256, bytes: r.bytes });
    note(`${key.slice(key.indexOf('/') + 1)} ${sizeText(r.bytes)}`);
  };
  const fromSource = (p: string) => (p.startsWith('boot:') ? contentOf(boot!.tree, boot!, p.slice(5)) : contentOf(rootfs, split.rootfs, p));
  const bspSelect = (part: string) => (p: string) => {
    const d = split.destination(p);
    return d.to === 'bsp' && d.part === part;
  };

  // BSP
  const files: BspFiles = {};
  await progress.phase('BSP', async (n) => {
    note = n;
    if (plan.bsp.kernel) {
      add('bsp/kernel.img', await putStream(inputs, fromSource(plan.bsp.kernel)));
      files.linux = 'kernel.img';
    }
    if (plan.bsp.fit) {
      add('bsp/pantavisor.fit', await putStream(inputs, fromSource(plan.bsp.fit)));
      files.fit = 'pantavisor.fit';
    }
    for (const dtb of plan.bsp.dtbs) add(`bsp/${dtbName(dtb)}`, await putStream(inputs, fromSource(dtb)));
    if (plan.bsp.dtbs[0] && !plan.bsp.fit) files.fdt = dtbName(plan.bsp.dtbs[0]);
    if (plan.bsp.initrd) {
      add('bsp/pv-initrd.img', await putStream(inputs, createReadStream(plan.bsp.initrd)));
      files.initrd = 'pv-initrd.img';
    }
    if (split.modulesRoot) {
      const select = bspSelect('modules');
      const view = filterTree(rootfs, { root: split.modulesRoot, select, linkCounts: split.linkCounts(select) });
      add('bsp/modules.squashfs', await putSquashfs(inputs, view, 'modules.squashfs'));
      files.modules = 'modules.squashfs';
    }
    if (plan.bsp.firmware) {
      const select = bspSelect('firmware');
      const view = filterTree(rootfs, { root: plan.bsp.firmware, select, linkCounts: split.linkCounts(select) });
      add('bsp/firmware.squashfs', await putSquashfs(inputs, view, 'firmware.squashfs'));
      files.firmware = 'firmware.squashfs';
    }
    // An image-only revision (a docker/OCI archive) has no BSP to describe.
    if (Object.keys(files).length > 0 || plan.containers.some((c) => c.kind === 'base')) state['bsp/run.json'] = bspRunJson(files);
  });

  const bspMounts = { modules: files.modules !== undefined, firmware: files.firmware !== undefined };
  const base = plan.containers.find((c) => c.kind === 'base');
  let baseRoot: { sha256: string; bytes: number } | undefined;
  for (const c of [...(base ? [base] : []), ...plan.containers.filter((c) => c !== base)]) {
    await progress.phase(`container ${c.name}`, async (n) => {
      note = n;
      if (c.kind === 'base') {
        const select = (p: string) => split.destination(p).to === 'base';
        baseRoot = await putSquashfs(inputs, filterTree(rootfs, { select, linkCounts: split.linkCounts(select) }), `${c.name}.root.squashfs`);
        add(`${c.name}/root.squashfs`, baseRoot);
      } else if (c.kind === 'app') {
        if (!baseRoot) throw new InvalidInputError('bad-plan', `app container ${c.name} needs a base container to layer on`);
        // Same object as the base root: zero extra bytes; the app's files ride in the overlay layer.
        add(`${c.name}/root.squashfs`, baseRoot);
        const select = (p: string) => {
          const d = split.destination(p);
          return d.to === 'app' && d.name === c.name;
        };
        add(`${c.name}/root.ovl.squashfs`, await putSquashfs(inputs, filterTree(rootfs, { select, linkCounts: split.linkCounts(select) }), `${c.name}.root.ovl.squashfs`));
      } else {
        if (!inputs.imageTree) throw new InvalidInputError('bad-plan', `container ${c.name} names image payload ${c.payload}, which this source does not have`);
        const tree = await inputs.imageTree(c);
        try {
          add(`${c.name}/root.squashfs`, await putSquashfs(inputs, tree, `${c.name}.root.squashfs`));
        } finally {
          await tree.close();
        }
      }
      const conf = Buffer.from(lxcContainerConf(c, { bspMounts: c.kind === 'image' ? { modules: false, firmware: false } : bspMounts }));
      add(`${c.name}/lxc.container.conf`, await putStream(inputs, streamOf(conf)));
      state[`${c.name}/run.json`] = containerRunJson(c);
    });
  }

  await progress.phase('configuration', async (n) => {
    note = n;
    for (const cfg of plan.config) {
      const payload = inputs.payloads.get(cfg.payload);
      if (!payload) throw new InvalidInputError('bad-plan', `config names payload ${cfg.payload}, which the source does not have`);
      add(`_config/${cfg.container}${cfg.path}`, await putStream(inputs, payload.open(cfg.member)));
    }
  });
  state[SOURCE_KEY] = sourceJson(inputs.source);
  return { state, objects };
}

/** A one-chunk stream (Readable.from(buffer) would emit it byte by byte). */
function streamOf(buf: Buffer): Readable {
  return Readable.from([buf]);
}
