import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { PvError } from '../errors.ts';
import { diagnostic, print } from './output.ts';

/** Each file in ./commands is one subcommand: it exports `summary`, `usage` and `run(argv)`. */
export interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

const commandsDir = fileURLToPath(new URL('./commands/', import.meta.url));

async function commandNames(): Promise<string[]> {
  return (await readdir(commandsDir))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

async function loadCommand(name: string): Promise<Command | undefined> {
  if (!/^[a-z][a-z-]*$/.test(name) || !(await commandNames()).includes(name)) return undefined;
  return (await import(`./commands/${name}.ts`)) as Command;
}

async function globalHelp(): Promise<string> {
  const lines = ['usage: pvmigrate <command> [options]   (pvmigrate <command> --help for details)', '', 'commands:'];
  for (const name of await commandNames()) {
    const cmd = await loadCommand(name);
    if (cmd) lines.push(`  ${name.padEnd(12)} ${cmd.summary}`);
  }
  lines.push('', 'exit status: 0 success/valid, 1 invalid/untrusted/failed verification, 2 usage or environment error');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  // `pvmigrate … | head` closes the pipe early: that is the reader's choice, not an error. Further output is
  // dropped and the command ends as usual, so its temp files are still removed.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.stdout.write = (() => true) as typeof process.stdout.write;
  });
  try {
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      print(await globalHelp());
      return name ? 0 : 2;
    }
    const cmd = await loadCommand(name);
    if (!cmd) {
      diagnostic(`pvmigrate: unknown command '${name}'; run pvmigrate --help for the list`);
      return 2;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      print(`usage: ${cmd.usage}\n\n${cmd.summary}`);
      return 0;
    }
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof PvError) {
      diagnostic(`pvmigrate ${name}: ${err.toLine()}`);
      return err.exitCode;
    }
    diagnostic(`pvmigrate ${name}: internal error: ${(err as Error)?.stack ?? String(err)}`);
    return 2;
  }
}
