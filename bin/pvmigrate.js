#!/usr/bin/env node
// Runs the prebuilt bundle (dist/current, `npm run build`) when it was built from the sources as they are now;
// otherwise the TypeScript sources through tsx's loader, as before. PVMIGRATE_BUNDLE=0 forces tsx,
// PVMIGRATE_BUNDLE=1 forces the bundle even if stale (tests compare the two).
import { fileURLToPath, pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freshBuild } from '../build/freshness.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const choice = process.env.PVMIGRATE_BUNDLE;
const build = choice === '0' ? undefined : choice === '1' ? join(root, 'dist', 'current') : freshBuild(root);
/** @type {(argv: string[]) => Promise<number>} */
let main;
if (choice === '1' && !existsSync(join(root, 'dist', 'current', 'main.js'))) {
  process.stderr.write('pvmigrate: PVMIGRATE_BUNDLE=1 but there is no bundle in dist/current; run npm run build\n');
  process.exit(2);
}
if (build) {
  // Stack traces of internal errors name the .ts sources, as under tsx (costs a few ms at start).
  process.setSourceMapsEnabled(true);
  ({ main } = await import(pathToFileURL(join(build, 'main.js')).href));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
