// Is the prebuilt CLI in dist/ current? Plain JS (no TypeScript loader yet when bin/pvmigrate.js asks) and
// synchronous: a stat walk of the ~160 source files costs a few milliseconds.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const STAMP_FILE = 'stamp.json';

/** What the bundle is built from. Directory mtimes count too, so an added, removed or renamed file is seen. */
const SOURCE_DIRS = ['src', 'importers', 'runtime'];

/**
 * Newest mtime (ms) of the bundle's sources under `root`; 0 when none is there (dist/ shipped alone).
 * @param {string} root
 * @returns {number}
 */
export function newestSourceMtime(root) {
  let newest = 0;
  /** @param {string} dir */
  const walk = (dir) => {
    let entries;
    try {
      newest = Math.max(newest, statSync(dir).mtimeMs);
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      if (/** @type {NodeJS.ErrnoException} */ (err).code === 'ENOENT') return;
      throw err;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else newest = Math.max(newest, statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? 0);
    }
  };
  for (const d of SOURCE_DIRS) walk(join(root, d));
  return newest;
}

/**
 * The current build directory (dist/current) when it was built from the sources as they are now.
 * @param {string} root
 * @returns {string | undefined}
 */
export function freshBuild(root) {
  const dir = join(root, 'dist', 'current');
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(dir, STAMP_FILE), 'utf8'));
  } catch {
    return undefined;
  }
  return typeof stamp.sourceMtimeMs === 'number' && newestSourceMtime(root) <= stamp.sourceMtimeMs ? dir : undefined;
}
