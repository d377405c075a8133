/**
 * Entry of the runtime bundle inside the initrd: only the commands a device needs (`run`, and `pvcontrol`
 * for /init's update inbox), with the CLI's error reporting and exit statuses. Bundled by esbuild into one
 * file (runtime/initrd/bundle.ts), separate from the CLI bundle in dist/.
 */
import { PvError } from '../../src/errors.ts';

const commands: Record<string, () => Promise<{ run(argv: string[]): Promise<number> }>> = {
  run: () => import('../../src/cli/commands/run.ts'),
  pvcontrol: () => import('../../src/cli/commands/pvcontrol.ts'),
};

const [name, ...rest] = process.argv.slice(2);
let code: number;
try {
  const load = name ? commands[name] : undefined;
  if (!load) {
    process.stderr.write(`pvmigrate runtime: unknown command '${name ?? ''}'; this bundle runs: ${Object.keys(commands).join(', ')}\n`);
    code = 2;
  } else code = await (await load()).run(rest);
} catch (err) {
  process.stderr.write(err instanceof PvError ? `pvmigrate ${name}: ${err.toLine()}\n` : `pvmigrate ${name}: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
  code = err instanceof PvError ? err.exitCode : 2;
}
process.exitCode = code;
