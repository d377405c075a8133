/** Phases of a conversion, shown as a listr2 task list on a terminal; silent with --json, in CI or when piped. */
export interface Progress {
  phase<T>(title: string, work: () => Promise<T>): Promise<T>;
}

export const silentProgress: Progress = {
  phase: (_title, work) => work(),
};

export async function progressFor(json: boolean): Promise<Progress> {
  if (json || !process.stdout.isTTY || process.env.CI) return silentProgress;
  const { Listr } = await import('listr2');
  return {
    async phase<T>(title: string, work: () => Promise<T>): Promise<T> {
      let result: T | undefined;
      await new Listr([{ title, task: async () => void (result = await work()) }], { exitOnError: true }).run();
      return result as T;
    },
  };
}
