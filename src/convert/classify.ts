import type { PlanConfig, PlanContainer, PlanReview } from '../split/plan.ts';
import { isUnder } from '../split/tree-index.ts';
import type { ExtraPayload } from './open-source.ts';

/** A file name safe for the review directory (no separators, no leading dots). */
export function reviewFileName(name: string): string {
  return `review/${name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_')}`;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Destination path a file payload declares: SWUpdate files `path`, Mender single-file `dest_dir` + `filename`. */
function destinationOf(p: ExtraPayload): string | undefined {
  const a = p.attributes;
  const path = str(a.path) ?? str(a.dest);
  if (path?.startsWith('/')) return path.endsWith('/') ? `${path}${p.name}` : path;
  const dir = str(a.dest_dir) ?? str(a.destDir);
  if (dir?.startsWith('/')) return `${dir.replace(/\/$/, '')}/${str(a.filename) ?? p.name}`;
  return undefined;
}

function reviewKind(p: ExtraPayload): PlanReview['kind'] {
  const type = String(p.attributes.type ?? '').toLowerCase();
  const name = p.name.toLowerCase();
  if (p.kind === 'script' || /script|shellscript|preinstall|postinstall/.test(type)) return 'script';
  if (/bootenv|uboot|bootloader/.test(type)) return 'bootenv';
  if (type === 'deb' || name.endsWith('.deb')) return 'deb';
  if (type === 'rpm' || name.endsWith('.rpm')) return 'rpm';
  if (p.kind === 'module') return 'module';
  if (p.kind === 'image' || /^(?:raw|flash|ubivol|mtd|partitions?)$/.test(type)) return 'raw';
  return 'unknown';
}

const REASONS: Record<PlanReview['kind'], string> = {
  script: 'an install script the old updater ran on the device; decide whether the new revision still needs its effect',
  bootenv: 'bootloader environment changes; Pantavisor manages the boot environment itself',
  raw: 'a raw write to a partition or flash outside the root filesystem; decide where its content belongs',
  deb: 'a Debian package the updater installed on the device; add it to the image or an app container',
  rpm: 'an RPM package the updater installed on the device; add it to the image or an app container',
  module: 'an update-module payload with no file destination; decide where its content belongs',
  inittab: 'inittab line',
  unknown: 'a payload of a kind the converter does not map; decide where its content belongs',
};

async function smallText(p: ExtraPayload, max = 4096): Promise<string> {
  if (p.size > max) return '';
  const chunks: Buffer[] = [];
  for await (const c of p.stream() as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8').trim();
}

const MENDER_META = new Set(['dest_dir', 'filename', 'permissions']);

/**
 * Mender single-file and directory module payloads: `dest_dir` (+ `filename`) name where the file or the
 * update.tar's content goes. Returns the payload names it consumed (the instructions and the content).
 */
async function menderModules(extras: ExtraPayload[], place: (p: string) => string, config: PlanConfig[]): Promise<Set<string>> {
  const consumed = new Set<string>();
  const groups = new Map<unknown, ExtraPayload[]>();
  for (const p of extras) {
    const type = p.attributes.payloadType;
    if (type !== 'single-file' && type !== 'directory') continue;
    const key = p.attributes.payloadIndex;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  for (const files of groups.values()) {
    const byName = new Map(files.map((f) => [String(f.attributes.fileName ?? f.name.slice(f.name.lastIndexOf('/') + 1)), f]));
    const destDir = byName.get('dest_dir') ? await smallText(byName.get('dest_dir')!) : '';
    if (!destDir.startsWith('/') || destDir.split('/').includes('..')) continue;
    const dir = destDir.replace(/\/+$/, '');
    const fileName = byName.get('filename') ? await smallText(byName.get('filename')!) : '';
    for (const [name, f] of byName) {
      if (MENDER_META.has(name)) continue;
      if (f.attributes.payloadType === 'directory') {
        if (!f.tree) continue;
        for (const e of f.tree.entries) {
          if (e.type !== 'file') continue;
          const path = `${dir}${e.path}`;
          config.push({ payload: f.name, member: e.path, container: place(path), path });
        }
      } else {
        const base = fileName && !fileName.includes('/') && fileName !== '..' ? fileName : name;
        const path = `${dir}/${base}`;
        config.push({ payload: f.name, member: null, container: place(path), path });
      }
      consumed.add(f.name);
    }
    for (const meta of MENDER_META) if (byName.has(meta)) consumed.add(byName.get(meta)!.name);
  }
  return consumed;
}

/**
 * The artifact's other payloads: files with a destination (SWUpdate `files` path, Mender single-file and
 * directory modules) become `_config/<container>/<path>` of the app whose paths hold the destination, else of
 * the base; everything else is a review item whose content is extracted.
 */
export async function classifyExtras(extras: ExtraPayload[], containers: PlanContainer[]): Promise<{ config: PlanConfig[]; review: PlanReview[] }> {
  const config: PlanConfig[] = [];
  const review: PlanReview[] = [];
  const base = containers.find((c) => c.kind === 'base')!;
  const place = (dest: string) => (containers.find((c) => c.kind === 'app' && c.paths.some((prefix) => isUnder(dest, prefix))) ?? base).name;
  const consumed = await menderModules(extras, place, config);
  for (const p of extras) {
    if (consumed.has(p.name)) continue;
    const dest = p.kind === 'file' ? destinationOf(p) : undefined;
    if (dest && !dest.split('/').includes('..')) {
      config.push({ payload: p.name, member: null, container: place(dest), path: dest });
      continue;
    }
    const kind = reviewKind(p);
    const notConvertible = str(p.attributes.notConvertible);
    review.push({ item: p.name, kind, reason: notConvertible ?? REASONS[kind], file: reviewFileName(p.name) });
  }
  return { config, review };
}
