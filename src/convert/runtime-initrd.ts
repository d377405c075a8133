import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PvError } from '../errors.ts';
import type { Plan } from '../split/plan.ts';
import type { TreeIndex } from '../split/tree-index.ts';
import type { OpenedSource } from './open-source.ts';

const REVIEW_ITEM = 'bsp/pv-initrd.img';

/** The CPU a kernel image is built for, from its boot header; undefined when the format is not known. */
export function kernelArch(head: Buffer): NodeJS.Architecture | undefined {
  // x86 bzImage: "HdrS" at 0x202; arm64 Image: "ARM\x64" at 0x38; 32-bit ARM zImage: 0x016f2818 at 0x24.
  if (head.length >= 0x206 && head.toString('latin1', 0x202, 0x206) === 'HdrS') return 'x64';
  if (head.length >= 0x3c && head.toString('latin1', 0x38, 0x3c) === 'ARM\x64') return 'arm64';
  if (head.length >= 0x28 && head.readUInt32LE(0x24) === 0x016f2818) return 'arm';
  return undefined;
}

async function headOf(index: TreeIndex, path: string): Promise<Buffer> {
  const entry = index.resolve(path);
  if (!entry || entry.type !== 'file') return Buffer.alloc(0);
  const stream = index.tree.open(entry);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    stream.destroy();
    return chunk.subarray(0, 4096);
  }
  return Buffer.alloc(0);
}

/**
 * A plan with a kernel but no initrd gets the runtime's own initrd (what `pvmigrate initrd` builds), when the
 * kernel is for this machine's architecture: the initrd carries this node binary and these host tools. For
 * another architecture, or when it cannot be built here, the plan keeps its review item, which says why.
 * Built once per scratch directory, so a fleet shares one initrd object.
 */
export async function provideRuntimeInitrd(plan: Plan, src: OpenedSource, scratch: string): Promise<void> {
  const { bsp } = plan;
  if (bsp.initrd || bsp.fit || !bsp.kernel || !src.hasRootfs) return;
  const note = (why: string) => {
    const item = plan.review.find((r) => r.item === REVIEW_ITEM);
    if (item) item.reason = `${why}: convert again with --initrd FILE (pvmigrate initrd on a machine of the device's architecture builds one) so the revision can boot`;
  };
  const inBoot = bsp.kernel.startsWith('boot:');
  const index = inBoot ? src.boot : src.rootfs;
  const arch = index ? kernelArch(await headOf(index, inBoot ? bsp.kernel.slice(5) : bsp.kernel)) : undefined;
  if (arch !== process.arch) return note(arch ? `the kernel is for ${arch}, this machine is ${process.arch}` : 'the kernel image format is not recognised');
  const output = join(scratch, 'runtime-initrd.img');
  if (!existsSync(output)) {
    try {
      const { buildInitrd } = await import('../../runtime/initrd/build.ts');
      await buildInitrd({ output });
    } catch (err) {
      if (!(err instanceof PvError)) throw err;
      return note(`the runtime initrd could not be built here (${err.message})`);
    }
  }
  bsp.initrd = output;
  plan.review = plan.review.filter((r) => r.item !== REVIEW_ITEM);
}
