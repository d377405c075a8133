// Runs every bench/*.bench.ts in name order (or those named on the command line) and prints their figures.
// `npm run bench` builds the bundle first, so CLI figures are those of the prebuilt CLI users run.
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('./', import.meta.url));
const only = process.argv.slice(2);
const files = (await readdir(dir)).filter((f) => f.endsWith('.bench.ts') && (only.length === 0 || only.some((o) => f.includes(o)))).sort();
let failed = 0;
for (const f of files) {
  console.log(`\n## ${f.replace('.bench.ts', '')}`);
  try {
    const mod = (await import(`./${f}`)) as { bench(): Promise<void> };
    await mod.bench();
  } catch (err) {
    failed++;
    console.log(`FAILED: ${(err as Error).stack ?? err}`);
  }
}
process.exitCode = failed ? 1 : 0;
