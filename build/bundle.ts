/**
 * Prebuilt plain-JS CLI: bundles src/cli/main.ts and every src/cli/commands/*.ts with esbuild into
 * dist/, so a run of `pvmigrate` pays no TypeScript loader start-up (bin/pvmigrate.js picks dist/ when it is
 * current, see build/freshness.js). Run with `node --import tsx build/bundle.ts`.
 *
 * Layout: each build goes to its own directory dist/b-<time>-<pid>/ and the symlink dist/current is switched
 * to it atomically at the end. Node resolves a module's real path, so a CLI run already started keeps loading
 * its lazy chunks from the build it began with while another engineer rebuilds (the checkout is shared, and
 * `npm test` builds). Builds older than an hour are removed.
 */
import { build, type Plugin } from 'esbuild';
import { mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newestSourceMtime, STAMP_FILE } from './freshness.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const distDir = join(root, 'dist');
const commandsDir = join(root, 'src/cli/commands');
const mainFile = join(root, 'src/cli/main.ts');
const KEEP_OLD_BUILDS_MS = 60 * 60 * 1000;

/**
 * Every output file sits directly in the build directory (dist/b-…/), two levels below the project root.
 * That is what lets a module's `import.meta.url` be rewritten to its source file's URL (below).
 */
const buildDepth = '../../';

/**
 * Modules that locate files next to themselves (src/demo/*-samples.ts: ../../samples/; runtime/initrd/build.ts:
 * runtime-main.ts and init.sh beside it; src/fs/compression.ts: createRequire; src/cli/main.ts: commands/) keep doing so from dist: `import.meta.url` becomes the URL of the module's own
 * source file, computed from the chunk's location, so relative paths land in the project tree as under tsx.
 */
function sourceUrlPlugin(commandFiles: string[]): Plugin {
  return {
    name: 'pvmigrate-source-url',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        if (args.path.split(sep).includes('node_modules')) return undefined;
        let contents = await readFile(args.path, 'utf8');
        if (args.path === mainFile) contents = withCommandIndex(contents, commandFiles);
        if (contents.includes('import.meta.url')) {
          const rel = buildDepth + relative(root, args.path).split(sep).join('/');
          contents = contents.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`);
        }
        return { contents, loader: 'ts' };
      });
    },
  };
}

/**
 * main.ts lists its subcommands with readdir(commandsDir); in the bundle that list is fixed at build time
 * (the commands themselves are bundled through main.ts's `import(\`./commands/${name}.ts\`)`), so dist/ runs
 * without the TypeScript sources beside it. Fails loudly if main.ts no longer reads the list that way.
 */
function withCommandIndex(source: string, commandFiles: string[]): string {
  const marker = 'await readdir(commandsDir)';
  const count = source.split(marker).length - 1;
  if (count !== 1) {
    throw new Error(`build/bundle.ts: expected src/cli/main.ts to list commands with '${marker}' exactly once (found ${count}); update withCommandIndex to match main.ts`);
  }
  return source.replace(marker, JSON.stringify(commandFiles));
}

async function removeOldBuilds(keep: string): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(distDir)) {
    if (!name.startsWith('b-') || name === keep) continue;
    const s = await stat(join(distDir, name)).catch(() => undefined);
    if (s && now - s.mtimeMs > KEEP_OLD_BUILDS_MS) await rm(join(distDir, name), { recursive: true, force: true });
  }
}

export async function bundle(): Promise<string> {
  // Taken before esbuild reads anything: a file edited during the build is newer than the stamp.
  const sourceMtimeMs = newestSourceMtime(root);
  const commandFiles = (await readdir(commandsDir)).filter((f) => f.endsWith('.ts')).sort();
  const entryPoints: Record<string, string> = { main: mainFile };
  for (const f of commandFiles) entryPoints[`command-${f.slice(0, -3)}`] = join(commandsDir, f);

  await mkdir(distDir, { recursive: true });
  const name = `b-${Date.now()}-${process.pid}`;
  const outdir = join(distDir, name);
  const result = await build({
    absWorkingDir: root,
    entryPoints,
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    sourcemap: true,
    entryNames: '[name]',
    chunkNames: 'chunk-[hash]',
    logLevel: 'warning',
    metafile: true,
    plugins: [sourceUrlPlugin(commandFiles)],
  }).catch(async (err: unknown) => {
    await rm(outdir, { recursive: true, force: true }); // dist/current still names the previous build
    throw err;
  });
  for (const out of Object.keys(result.metafile.outputs)) {
    if (relative(outdir, join(root, out)).includes('/')) throw new Error(`build/bundle.ts: output ${out} is not directly in ${outdir}; import.meta.url rewriting assumes a flat build`);
  }
  await writeFile(join(outdir, STAMP_FILE), JSON.stringify({ sourceMtimeMs, commands: commandFiles.map((f) => f.slice(0, -3)) }) + '\n');
  await writeFile(join(outdir, 'package.json'), '{ "type": "module" }\n');
  // Which sources each output holds and what it imports (statically or lazily): checked by test/cli-bundle.test.ts.
  await writeFile(join(outdir, 'meta.json'), JSON.stringify(result.metafile));

  const link = join(distDir, `.current-${process.pid}`);
  await rm(link, { force: true });
  await symlink(name, link);
  await rename(link, join(distDir, 'current'));
  await removeOldBuilds(name);
  return outdir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const outdir = await bundle();
  console.error(`pvmigrate: bundled the CLI into ${relative(root, outdir)} (dist/current)`);
}
