/**
 * Boot: pick the revision as Pantavisor's bootloader scripts do (pv_rev / pv_try / pv_trying), then refuse to
 * run it unless its state parses, its signatures hold under the secure-boot mode, every object is present
 * and (unless quickboot) re-hashes to its name, and every trail entry is linked. A refusal is written into
 * the revision's progress with Pantavisor's message and into the runtime log.
 */
import { InvalidInputError, PvError } from '../src/errors.ts';
import { parseJson, isJsonObject } from '../src/revision/canonical-json.ts';
import { objectRefs, type State } from '../src/revision/state.ts';
import type { SecurebootMode, TrustOptions } from '../src/revision/signature.ts';
import type { RuntimeLog } from './log.ts';
import { checkSignatures } from './signatures.ts';
import type { Storage } from './storage.ts';

export interface BootOptions {
  secureboot: SecurebootMode;
  /** Truststore and device key for pvs@2 signatures (PV_SECUREBOOT_TRUSTSTORE, pvs/trust/pub.pem). */
  trust?: TrustOptions;
  /** PV_SECUREBOOT_CHECKSUM: re-hash every object at boot (false = quickboot). */
  checksum: boolean;
}

export interface BootSelection {
  rev: string;
  /** Booting pv_try for the first time (an update under test). */
  trying: boolean;
  /** A try that was never committed was abandoned for pv_rev on this boot. */
  rolledBackFrom?: string;
}

/** The bootloader's choice, with the pv_trying bookkeeping it does before handing over. */
export async function selectRevision(storage: Storage): Promise<BootSelection> {
  const env = await storage.readBootEnv();
  if (env.pv_try && env.pv_try !== env.pv_rev) {
    if (env.pv_trying !== env.pv_try) {
      await storage.writeBootEnv({ ...env, pv_trying: env.pv_try });
      return { rev: env.pv_try, trying: true };
    }
    // The previous boot tried pv_try and never committed it: fall back to the last committed revision.
    await storage.writeBootEnv({ pv_rev: env.pv_rev, pv_try: env.pv_try });
    return { rev: env.pv_rev, trying: false, rolledBackFrom: env.pv_try };
  }
  return { rev: env.pv_rev, trying: false };
}

export interface VerifiedRevision {
  rev: string;
  state: State;
  stateText: string;
  relinked: string[];
}

/** Record a refusal in the revision's progress and the log, then throw it. */
async function refuse(storage: Storage, log: RuntimeLog, rev: string, statusMsg: string, detail: string): Promise<never> {
  log.error('boot', `revision ${rev} refused: ${statusMsg}: ${detail}`);
  await storage.writeProgress(rev, { status: 'ERROR', 'status-msg': statusMsg, progress: 100, retries: (await storage.readProgress(rev))?.retries ?? 0, logs: detail }).catch(() => undefined);
  throw new InvalidInputError('boot-refused', `revision ${rev} refused: ${statusMsg}: ${detail}`, { file: storage.statePath(rev) });
}

export async function verifyRevision(storage: Storage, rev: string, log: RuntimeLog, options: BootOptions): Promise<VerifiedRevision> {
  const stateText = await storage.readStateText(rev).catch((err: PvError) => refuse(storage, log, rev, 'State JSON not found', err.message));
  let state: State;
  try {
    const v = parseJson(stateText, storage.statePath(rev));
    if (!isJsonObject(v)) throw new Error('the state is not a JSON object');
    state = v;
  } catch (err) {
    return refuse(storage, log, rev, 'State JSON has bad format', (err as Error).message);
  }

  if (options.secureboot !== 'disabled') {
    const verdict = checkSignatures(stateText, options.secureboot, options.trust);
    for (const w of verdict.warnings) log.warn('signature', w);
    if (!verdict.ok) return refuse(storage, log, rev, verdict.statusMsg!, verdict.detail!);
  }

  for (const [sha, keys] of objectRefs(state)) {
    if (!(await storage.objects.has(sha))) return refuse(storage, log, rev, 'Object validation went wrong', `object ${sha} of '${keys[0]}' is missing from storage`);
    if (options.checksum) {
      const r = await storage.objects.verify(sha);
      if (r.status !== 'ok') return refuse(storage, log, rev, 'Object validation went wrong', `object ${sha} of '${keys[0]}' is corrupt (content hashes to ${r.status === 'mismatch' ? r.actual : 'nothing'})`);
    }
  }
  const relinked = await storage.linkTrail(rev, state).catch((err: Error) => refuse(storage, log, rev, 'Object validation went wrong', err.message));
  if (relinked.length) log.warn('boot', `revision ${rev}: relinked trail entries ${relinked.join(', ')}`);
  return { rev, state, stateText, relinked };
}
