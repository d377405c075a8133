/**
 * Phases of a conversion, shown as a listr2 task list on a terminal (each phase's title gains the payloads it
 * wrote, with their sizes); silent with --json, in CI or when stdout is not a terminal.
 */
export interface Progress {
  phase<T>(title: string, work: (note: (text: string) => void) => Promise<T>): Promise<T>;
}

export const silentProgress: Progress = {
  phase: (_title, work) => work(() => undefined),
};

export function sizeText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1048576) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

export async function progressFor(json: boolean): Promise<Progress> {
  if (json || !process.stdout.isTTY || process.env.CI) return silentProgress;
  const { Listr } = await import('listr2');
  return {
    async phase<T>(title: string, work: (note: (text: string) => void) => Promise<T>): Promise<T> {
      let result: T | undefined;
      await new Listr(
        [
          {
            title,
            task: async (_ctx, task) => {
              const notes: string[] = [];
              result = await work((text) => {
                notes.push(text);
                task.title = `${title}: ${notes.join(', ')}`;
              });
            },
          },
        ],
        { exitOnError: true },
      ).run();
      return result as T;
    },
  };
}
