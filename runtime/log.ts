/** The runtime's own log: logs/<rev>/pantavisor/pantavisor.log (as Pantavisor keeps it) and, optionally, stderr. */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type Level = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

export class RuntimeLog {
  private file: string | undefined;
  constructor(private readonly echo: boolean) {}

  /** Route further lines to the log of revision `rev` under `logsRoot` (logs/<rev>). */
  attach(logsDirOfRev: string): void {
    this.file = join(logsDirOfRev, 'pantavisor', 'pantavisor.log');
    mkdirSync(dirname(this.file), { recursive: true });
  }

  get path(): string | undefined {
    return this.file;
  }

  write(level: Level, module: string, msg: string): void {
    const line = `[pantavisor] ${new Date().toISOString()} ${level}\t -- [${module}]: ${msg}\n`;
    // Synchronous so the line survives a crash right after it; the log is small and written rarely.
    if (this.file) {
      try {
        appendFileSync(this.file, line);
      } catch {
        /* storage gone: still echo */
      }
    }
    if (this.echo || level === 'ERROR') process.stderr.write(line);
  }
  info(module: string, msg: string): void {
    this.write('INFO', module, msg);
  }
  warn(module: string, msg: string): void {
    this.write('WARN', module, msg);
  }
  error(module: string, msg: string): void {
    this.write('ERROR', module, msg);
  }
}
