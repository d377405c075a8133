import type { PromptObject } from 'prompts';
import { InvalidInputError, UsageError } from '../errors.ts';

/** Ctrl-C or Esc at a prompt: the wizard stops and removes what it had started. */
export class WizardCancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

export interface Choice<T> {
  title: string;
  value: T;
  description?: string;
  selected?: boolean;
}

/**
 * Where answers come from: a person at a terminal, or a recorded session. The replay never guesses: a
 * question the recording does not answer is an error naming it.
 */
export interface Ask {
  readonly interactive: boolean;
  select<T>(id: string, message: string, choices: Choice<T>[], initial?: number): Promise<T>;
  multiselect<T>(id: string, message: string, choices: Choice<T>[]): Promise<T[]>;
  text(id: string, message: string, initial?: string): Promise<string>;
  confirm(id: string, message: string, initial: boolean): Promise<boolean>;
  say(line: string): void;
}

export async function terminalAsk(out: NodeJS.WriteStream): Promise<Ask> {
  // prompts colours through kleur 3, which reads NODE_DISABLE_COLORS (not NO_COLOR) when it loads.
  if ('NO_COLOR' in process.env) process.env.NODE_DISABLE_COLORS = '1';
  const { default: prompts } = await import('prompts');
  const one = async <T>(q: Omit<PromptObject, 'name'>): Promise<T> => {
    let cancelled = false;
    const res = await prompts({ ...q, name: 'v' } as PromptObject, { onCancel: () => void (cancelled = true) });
    if (cancelled || !('v' in res)) throw new WizardCancelled();
    return res.v as T;
  };
  return {
    interactive: true,
    select: (_id, message, choices, initial = 0) => one({ type: 'select', message, choices, initial, stdout: out }),
    multiselect: (_id, message, choices) => one({ type: 'multiselect', message, choices, instructions: false, hint: 'space to toggle, enter to accept', stdout: out }),
    text: (_id, message, initial) => one({ type: 'text', message, initial, stdout: out }),
    confirm: (_id, message, initial) => one({ type: 'confirm', message, initial, stdout: out }),
    say: (line) => void out.write(line + '\n'),
  };
}

/**
 * No terminal: every answer must come from the recorded session (`file`) or from flags. A question neither
 * settles is an error naming it, never a guess.
 */
export function replayAsk(file: string | undefined, out: NodeJS.WriteStream): Ask {
  const missing = (id: string): never => {
    if (file) throw new InvalidInputError('answers-incomplete', `the recorded answers do not answer "${id}"; record the session again with pvmigrate wizard`, { file });
    throw new UsageError(
      `the wizard needs a terminal to ask "${id}": run it in one, replay a recorded session with --answers FILE, give that answer as a flag, or use pvmigrate convert (see pvmigrate convert --help)`,
      { code: 'no-tty' },
    );
  };
  return {
    interactive: false,
    select: async (id) => missing(id),
    multiselect: async (id) => missing(id),
    text: async (id) => missing(id),
    confirm: async (id) => missing(id),
    say: (line) => void out.write(line + '\n'),
  };
}
