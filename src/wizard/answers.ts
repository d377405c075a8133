import { InvalidInputError } from '../errors.ts';
import { readJsonFile } from '../util/json-file.ts';
import type { Group, RestartPolicy } from '../split/plan.ts';

export const ANSWERS_SPEC = 'pvmigrate-wizard-answers@1';
export type StatusGoal = 'MOUNTED' | 'STARTED' | 'READY';

/** Changes the user made to the detected plan, in the order made; replayed on the plan detected next time. */
export type PlanEdit =
  | { op: 'rename'; container: string; to: string }
  | { op: 'move'; path: string; to: string }
  | { op: 'group'; container: string; group: Group }
  | { op: 'restart_policy'; container: string; restart_policy: RestartPolicy }
  | { op: 'status_goal'; container: string; status_goal: StatusGoal }
  /** Keep a file the plan would remove as old-updater leftover (it stays in the base container). */
  | { op: 'keep'; path: string };

/** Trust material for the chosen input, by flag name. */
export interface TrustAnswers {
  key?: string;
  keyring?: string;
  decryptKey?: string;
  ca?: string;
  pubkey?: string;
  aesKey?: string;
}

/** A recorded wizard session: every answer, so `--answers FILE` replays it without a terminal. */
export interface Answers {
  '#spec': typeof ANSWERS_SPEC;
  input: string;
  trust: TrustAnswers;
  acceptUnverified: boolean;
  initrd: string | null;
  edits: PlanEdit[];
  boot: boolean;
  signKey: string | null;
  output: string;
}

const TRUST_KEYS = ['key', 'keyring', 'decryptKey', 'ca', 'pubkey', 'aesKey'] as const;
const EDIT_FIELDS: Record<PlanEdit['op'], string[]> = {
  rename: ['container', 'to'],
  move: ['path', 'to'],
  group: ['container', 'group'],
  restart_policy: ['container', 'restart_policy'],
  status_goal: ['container', 'status_goal'],
  keep: ['path'],
};

/** Answers recorded so far; fields not yet answered are absent. */
export type PartialAnswers = Partial<Answers>;

export async function readAnswers(file: string): Promise<PartialAnswers> {
  const doc = await readJsonFile(file, { code: 'bad-answers', what: 'recorded answers', maxBytes: 1024 * 1024, hint: 'record a fresh session with pvmigrate wizard' });
  return checkAnswers(doc, file);
}

function checkAnswers(doc: unknown, file: string): PartialAnswers {
  const bad = (what: string): never => {
    throw new InvalidInputError('bad-answers', `${what}; record a fresh session with pvmigrate wizard`, { file });
  };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return bad('must be a JSON object');
  const a = doc as Record<string, unknown>;
  if (a['#spec'] !== ANSWERS_SPEC) bad(`#spec must be "${ANSWERS_SPEC}"`);
  const str = (k: string) => a[k] === undefined || typeof a[k] === 'string' || bad(`${k} must be a string`);
  const strOrNull = (k: string) => a[k] === undefined || a[k] === null || typeof a[k] === 'string' || bad(`${k} must be a string or null`);
  const bool = (k: string) => a[k] === undefined || typeof a[k] === 'boolean' || bad(`${k} must be true or false`);
  str('input');
  str('output');
  strOrNull('initrd');
  strOrNull('signKey');
  bool('acceptUnverified');
  bool('boot');
  if (a.trust !== undefined) {
    if (typeof a.trust !== 'object' || a.trust === null) bad('trust must be an object');
    for (const [k, v] of Object.entries(a.trust as object)) {
      if (!(TRUST_KEYS as readonly string[]).includes(k)) bad(`trust.${k} is not a trust flag (${TRUST_KEYS.join(', ')})`);
      if (typeof v !== 'string') bad(`trust.${k} must be a file path`);
    }
  }
  if (a.edits !== undefined) {
    if (!Array.isArray(a.edits)) bad('edits must be an array');
    (a.edits as unknown[]).forEach((e, i) => {
      const op = (e as { op?: unknown })?.op;
      const fields = typeof op === 'string' ? EDIT_FIELDS[op as PlanEdit['op']] : undefined;
      if (!fields) return bad(`edits[${i}].op must be one of ${Object.keys(EDIT_FIELDS).join(', ')}`);
      for (const f of fields) if (typeof (e as Record<string, unknown>)[f] !== 'string') bad(`edits[${i}].${f} must be a string`);
    });
  }
  return a as PartialAnswers;
}
