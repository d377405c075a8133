/** Spawning helpers shared by the drivers: exit as a promise, graceful stop, reading a readiness line. */
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { ExitInfo } from './drivers/types.ts';

export function exitOf(child: ChildProcess): Promise<ExitInfo> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/**
 * SIGTERM `pid` (repeated every 250 ms: an init that is PID 1 of its namespace drops the signal until its
 * handler is installed, e.g. right after it started), SIGKILL after `graceMs` if `exited` has not settled.
 */
export async function terminate(pid: number, exited: Promise<ExitInfo>, graceMs: number): Promise<ExitInfo> {
  const send = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  };
  send('SIGTERM');
  const again = setInterval(() => send('SIGTERM'), 250);
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      send('SIGKILL');
      resolve();
    }, graceMs);
  });
  await Promise.race([exited, killed]);
  clearInterval(again);
  clearTimeout(timer);
  return exited;
}

/** Resolve with the first line on `stream` equal to `word`, or reject with what came instead when it closes. */
export function waitForLine(stream: Readable, word: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      if (buf.split('\n').includes(word)) {
        stream.off('data', onData);
        stream.off('close', onClose);
        resolve();
      } else if (buf.length > 4096) buf = buf.slice(-1024);
    };
    const onClose = () => reject(new Error(`${what} ended before reporting '${word}'`));
    stream.on('data', onData);
    stream.once('close', onClose);
  });
}
