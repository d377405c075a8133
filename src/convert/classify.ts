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
  if (p.kind === 'image' || /raw|flash|ubivol|mtd|partition/.test(type)) return 'raw';
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

/**
 * The artifact's other payloads: files with a destination become `_config/<container>/<path>` (the app whose
 * paths hold the destination, else the base), everything else a review item whose content is extracted.
 */
export function classifyExtras(extras: ExtraPayload[], containers: PlanContainer[]): { config: PlanConfig[]; review: PlanReview[] } {
  const config: PlanConfig[] = [];
  const review: PlanReview[] = [];
  const base = containers.find((c) => c.kind === 'base')!;
  for (const p of extras) {
    const dest = p.kind === 'file' || p.kind === 'module' ? destinationOf(p) : undefined;
    if (dest && !dest.split('/').includes('..')) {
      const owner = containers.find((c) => c.kind === 'app' && c.paths.some((prefix) => isUnder(dest, prefix))) ?? base;
      config.push({ payload: p.name, member: null, container: owner.name, path: dest });
      continue;
    }
    const kind = reviewKind(p);
    const notConvertible = str(p.attributes.notConvertible);
    review.push({ item: p.name, kind, reason: notConvertible ?? REASONS[kind], file: reviewFileName(p.name) });
  }
  return { config, review };
}
