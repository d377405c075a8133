/**
 * The prebuilt bundle (dist/current, build/bundle.ts) is the same CLI as the TypeScript sources run through
 * tsx: byte-identical stdout (and stderr where it is deterministic) and the same exit code, command by command.
 * The start-up gain is measured in bench/startup.bench.ts, not asserted here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { before, test } from 'node:test';
import { freshBuild, newestSourceMtime } from '../build/freshness.js';
import { initRepo } from '../src/revision/pvr-repo.ts';
import { repoRoot, runCli, type CliResult } from './helpers/cli.ts';
import { corpus, corpusSkip, needTool, sh, tempDir } from './helpers/env.ts';

const bin = join(repoRoot, 'bin/pvmigrate.js');
const samples = join(repoRoot, 'samples/revision');
const commandSources = () => readdirSync(join(repoRoot, 'src/cli/commands')).filter((f) => f.endsWith('.ts')).sort();

before(() => {
  if (!freshBuild(repoRoot)) sh(process.execPath, ['--import', 'tsx', 'build/bundle.ts'], { cwd: repoRoot });
});

/** The same command through the bundle and through tsx (PVMIGRATE_BUNDLE forces bin/pvmigrate.js's choice). */
async function both(args: string[], options: { cwd?: string; cwdTsx?: string } = {}): Promise<{ bundle: CliResult; tsx: CliResult }> {
  const [bundle, tsx] = await Promise.all([
    runCli(args, { cwd: options.cwd, env: { PVMIGRATE_BUNDLE: '1' } }),
    runCli(args, { cwd: options.cwdTsx ?? options.cwd, env: { PVMIGRATE_BUNDLE: '0' } }),
  ]);
  return { bundle, tsx };
}

interface SameOptions {
  sameStderr?: boolean;
  cwd?: string;
  /** A different working directory for the tsx run (both write an output file). */
  cwdTsx?: string;
  /** Applied to the tsx stdout before comparing (e.g. its cwdTsx in an output path). */
  normalizeTsx?: (stdout: string) => string;
}

async function assertSame(args: string[], expectCode: number, options: SameOptions = {}): Promise<CliResult> {
  const { bundle, tsx } = await both(args, options);
  assert.equal(tsx.code, expectCode, `tsx: pvmigrate ${args.join(' ')}: ${tsx.stderr}`);
  assert.equal(bundle.code, tsx.code, `bundle: pvmigrate ${args.join(' ')}: ${bundle.stderr}`);
  assert.equal(bundle.stdout, options.normalizeTsx ? options.normalizeTsx(tsx.stdout) : tsx.stdout);
  if (options.sameStderr) assert.equal(bundle.stderr, tsx.stderr);
  return bundle;
}

test('bundle: --help lists every command, as under tsx; no command is an error (exit 2)', async () => {
  const out = await assertSame(['--help'], 0, { sameStderr: true });
  const listed = out.stdout.split('\n').filter((l) => /^  [a-z]/.test(l)).map((l) => l.trim().split(/\s+/)[0]);
  assert.deepEqual(listed, commandSources().map((f) => f.slice(0, -3)));
  await assertSame([], 2, { sameStderr: true });
  await assertSame(['inspect', '--help'], 0, { sameStderr: true });
});

test('bundle: usage and environment errors give the same line and exit 2', async () => {
  await assertSame(['no-such-command'], 2, { sameStderr: true });
  await assertSame(['ls', '--no-such-flag', 'x'], 2, { sameStderr: true });
  await assertSame(['inspect', '/nonexistent/artifact.mender'], 2, { sameStderr: true });
});

test('bundle: inspect --json of corpus artifacts (Mender, RAUC, SWUpdate)', { skip: corpusSkip }, async () => {
  const mender = await assertSame(['inspect', '--json', corpus('mender/mender-artifact__cli_artifact.mender')], 0);
  assert.equal(JSON.parse(mender.stdout).name, 'testName');
  await assertSame(['inspect', '--json', corpus('mender/mender-server__backend_tests_data_test-artifact.mender')], 0);
  await assertSame(['inspect', '--json', '--keyring', corpus('rauc/dev-ca.pem'), corpus('rauc/good-bundle.raucb')], 0);
  await assertSame(['inspect', '--json', corpus('swupdate/swugenerator__output.swu')], 0);
  // Refused input: same diagnostic and exit 1.
  await assertSame(['inspect', '--json', corpus('rauc/invalid-sig-bundle.raucb'), '--keyring', corpus('rauc/dev-ca.pem')], 1, { sameStderr: true });
});

test('bundle: ls --json of an ext4 image made by mkfs.ext4 -d', { skip: needTool('mkfs.ext4') }, async (t) => {
  const dir = await tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'etc'), { recursive: true });
  writeFileSync(join(tree, 'etc/hostname'), 'device\n');
  writeFileSync(join(tree, 'big.bin'), Buffer.alloc(300_000, 7));
  sh('ln', ['-s', 'etc/hostname', join(tree, 'link')]);
  const img = join(dir, 'root.ext4');
  sh('mkfs.ext4', ['-q', '-F', '-d', tree, img, '4M']);
  const out = await assertSame(['ls', '--json', img], 0);
  assert.ok(out.stdout.includes('"etc/hostname"'), out.stdout.slice(0, 500));
  await assertSame(['ls', img], 0);
});

test('bundle: validate a sample revision (valid, then with a damaged object)', async (t) => {
  const dir = join(await tempDir(t), 'repo');
  const repo = await initRepo(dir);
  await repo.commitTree(join(samples, 'a'));
  const ok = await assertSame(['validate', '--json', dir], 0);
  assert.equal(JSON.parse(ok.stdout).valid, true);
  await assertSame(['validate', dir], 0);
  const objects = join(dir, '.pvr/objects');
  const victim = sh('ls', [objects]).split('\n').filter(Boolean)[0]!;
  writeFileSync(join(objects, victim), 'not the object\n');
  await assertSame(['validate', '--json', dir], 1);
});

test('bundle: demo finds the samples from dist (import.meta.url of the source file) and passes every step', async (t) => {
  const dir = await tempDir(t);
  const [bundle, tsx] = await Promise.all([
    runCli(['demo', '--out', join(dir, 'a')], { cwd: dir, env: { PVMIGRATE_BUNDLE: '1' } }),
    runCli(['demo', '--out', join(dir, 'b')], { cwd: dir, env: { PVMIGRATE_BUNDLE: '0' } }),
  ]);
  assert.equal(tsx.code, 0, tsx.stderr);
  assert.equal(bundle.code, 0, bundle.stderr);
  // Step lines carry timings and paths; the steps and their verdicts must be the same.
  const steps = (out: string) => out.split('\n').filter((l) => /^(ok|FAIL|fail)\b/i.test(l)).map((l) => l.split(':')[0]);
  assert.ok(steps(tsx.stdout).length > 0, tsx.stdout);
  assert.deepEqual(steps(bundle.stdout), steps(tsx.stdout));
});

test('bundle: mksquashfs with worker threads writes the same image', { skip: needTool('unsquashfs') }, async (t) => {
  const dir = await tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'd'), { recursive: true });
  for (let i = 0; i < 6; i++) writeFileSync(join(tree, 'd', `f${i}`), Buffer.alloc(200_000 + i * 1000, i + 1));
  const [a, b] = [join(dir, 'a'), join(dir, 'b')];
  mkdirSync(a);
  mkdirSync(b);
  await assertSame(['mksquashfs', tree, '-o', 'out.squashfs', '--workers', '2'], 0, { cwd: a, cwdTsx: b });
  const bundled = readFileSync(join(a, 'out.squashfs'));
  assert.ok(bundled.equals(readFileSync(join(b, 'out.squashfs'))), 'images differ');
  // Independent check: squashfs-tools reads what the bundle wrote.
  assert.match(sh('unsquashfs', ['-l', join(a, 'out.squashfs')]), /squashfs-root\/d\/f5/);
});

test('bundle: initrd finds runtime/initrd/ from dist and writes the same image', { skip: needTool('busybox') }, async (t) => {
  const dir = await tempDir(t);
  const [a, b] = [join(dir, 'a'), join(dir, 'b')];
  mkdirSync(a);
  mkdirSync(b);
  await assertSame(['initrd', '-o', 'initrd.img'], 0, { cwd: a, cwdTsx: b, normalizeTsx: (out) => out.replaceAll(b, a) });
  assert.ok(readFileSync(join(a, 'initrd.img')).equals(readFileSync(join(b, 'initrd.img'))), 'images differ');
});

test('bundle: dist runs without the TypeScript sources beside it (bin, build/freshness.js, dist, node_modules)', { skip: corpusSkip }, async (t) => {
  const dir = await tempDir(t);
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, 'build'));
  mkdirSync(join(dir, 'dist'));
  sh('cp', [bin, join(dir, 'bin/')]);
  sh('cp', [join(repoRoot, 'build/freshness.js'), join(dir, 'build/')]);
  sh('cp', ['-rL', join(repoRoot, 'dist/current'), join(dir, 'dist/current')]);
  sh('cp', [join(repoRoot, 'package.json'), dir]);
  sh('ln', ['-s', join(repoRoot, 'node_modules'), join(dir, 'node_modules')]);
  const alone = (args: string[]) => spawnSync(process.execPath, [join(dir, 'bin/pvmigrate.js'), ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, PVMIGRATE_BUNDLE: '' } });
  const artifact = corpus('mender/mender-artifact__cli_artifact.mender');
  const r = alone(['inspect', '--json', artifact]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, (await runCli(['inspect', '--json', artifact], { env: { PVMIGRATE_BUNDLE: '0' } })).stdout);
  const help = alone(['--help']);
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^ {2}run {10}/m);
});

/** Module URLs resolved by a child run of bin/pvmigrate.js, via a loader hook that records them. */
async function resolvedModules(t: Parameters<typeof tempDir>[0], env: Record<string, string>): Promise<string[]> {
  const dir = await tempDir(t);
  const log = join(dir, 'resolved.log');
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(hooks, `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, r.url + '\\n');
  return r;
}
`);
  const probe = join(dir, 'probe.mjs');
  writeFileSync(probe, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  writeFileSync(log, '');
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(probe).href, bin, 'ls', '--help'], { env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(log, 'utf8').split('\n').filter(Boolean);
}

test('bin/pvmigrate.js: a fresh bundle is what runs; PVMIGRATE_BUNDLE=0 runs the sources through tsx', async (t) => {
  // Loaded through its real build directory, never dist/current: a rebuild switching the link meanwhile
  // cannot make a running CLI load the next build's lazy chunks.
  const distMain = (urls: string[]) => urls.some((u) => /\/dist\/b-[^/]+\/main\.js$/.test(u)) && !urls.some((u) => u.includes('/dist/current/'));
  const srcMain = (urls: string[]) => urls.some((u) => u.endsWith('/src/cli/main.ts'));
  const forced = await resolvedModules(t, { PVMIGRATE_BUNDLE: '1' });
  assert.ok(distMain(forced) && !srcMain(forced), forced.join('\n'));
  const tsx = await resolvedModules(t, { PVMIGRATE_BUNDLE: '0' });
  assert.ok(srcMain(tsx) && !distMain(tsx), tsx.join('\n'));
  // The default choice, when nobody edits a source meanwhile (the checkout is shared): rebuild, then run.
  sh(process.execPath, ['--import', 'tsx', 'build/bundle.ts'], { cwd: repoRoot });
  const freshBefore = freshBuild(repoRoot) !== undefined;
  const auto = await resolvedModules(t, { PVMIGRATE_BUNDLE: '' });
  if (freshBefore && freshBuild(repoRoot) !== undefined) assert.ok(distMain(auto) && !srcMain(auto), auto.join('\n'));
  else t.diagnostic('a source changed during the check: default choice not asserted');
});

test('freshness: a bundle is current until a source file is edited, added or removed', async (t) => {
  const root = await tempDir(t);
  const file = (p: string, when: number) => {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), 'x');
    utimesSync(join(root, p), when, when);
  };
  const t0 = 1_700_000_000;
  const stamp = (ms: number) => {
    mkdirSync(join(root, 'dist/current'), { recursive: true });
    writeFileSync(join(root, 'dist/current/stamp.json'), JSON.stringify({ sourceMtimeMs: ms }));
  };
  assert.equal(freshBuild(root), undefined, 'no dist: not fresh');
  stamp(0);
  assert.equal(freshBuild(root), join(root, 'dist/current'), 'dist shipped without sources is used');
  file('src/cli/main.ts', t0);
  file('importers/mender/read.ts', t0);
  file('runtime/boot.ts', t0);
  for (const d of ['src/cli', 'src', 'importers/mender', 'importers', 'runtime']) utimesSync(join(root, d), t0, t0);
  assert.equal(newestSourceMtime(root), t0 * 1000);
  stamp(t0 * 1000);
  assert.equal(freshBuild(root), join(root, 'dist/current'));
  utimesSync(join(root, 'runtime/boot.ts'), t0 + 1, t0 + 1);
  assert.equal(freshBuild(root), undefined, 'edited file');
  stamp((t0 + 1) * 1000);
  assert.ok(freshBuild(root));
  file('importers/mender/new.ts', t0); // an old mtime (copied file): the directory's mtime still moves
  assert.equal(freshBuild(root), undefined, 'added file');
  for (const d of ['src/cli', 'src', 'importers/mender', 'importers', 'runtime']) utimesSync(join(root, d), t0 + 1, t0 + 1);
  stamp(newestSourceMtime(root));
  assert.ok(freshBuild(root));
  sh('rm', [join(root, 'src/cli/main.ts')]);
  assert.equal(freshBuild(root), undefined, 'removed file');
});

interface Meta {
  outputs: Record<string, { entryPoint?: string; inputs: Record<string, unknown>; imports: { path: string; kind: string; external?: boolean }[] }>;
}

test('bundle layout: main loads no command up front, and no command loads another', () => {
  const build = join(repoRoot, 'dist/current');
  const meta = JSON.parse(readFileSync(join(build, 'meta.json'), 'utf8')) as Meta;
  /** Every source file an output pulls in before it runs (static imports, transitively). */
  const staticSources = (out: string, seen = new Set<string>()): Set<string> => {
    const sources = new Set<string>();
    if (seen.has(out)) return sources;
    seen.add(out);
    for (const input of Object.keys(meta.outputs[out]!.inputs)) sources.add(input);
    for (const i of meta.outputs[out]!.imports) if (i.kind === 'import-statement' && !i.external) for (const s of staticSources(i.path, seen)) sources.add(s);
    return sources;
  };
  const entries = Object.entries(meta.outputs).filter(([, o]) => o.entryPoint);
  const main = entries.find(([, o]) => o.entryPoint === 'src/cli/main.ts')!;
  const commandsOf = (sources: Set<string>) => [...sources].filter((s) => s.startsWith('src/cli/commands/'));
  assert.deepEqual(commandsOf(staticSources(main[0])), []);
  const commands = entries.filter(([, o]) => o.entryPoint!.startsWith('src/cli/commands/'));
  assert.equal(commands.length, commandSources().length);
  for (const [out, o] of commands) assert.deepEqual(commandsOf(staticSources(out)), [o.entryPoint], out);
  // Heavy modules stay behind each command's lazy import(): inspect's up-front code has no importer.
  const inspect = commands.find(([, o]) => o.entryPoint === 'src/cli/commands/inspect.ts')!;
  assert.deepEqual([...staticSources(inspect[0])].filter((s) => s.startsWith('importers/')), []);
});
