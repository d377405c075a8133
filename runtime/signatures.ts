/**
 * Secure-boot check of a state at boot, mapped onto Pantavisor's result strings (reference §4.3).
 * Coverage and signature verification are the revision core's; this module only turns its verdict into
 * the progress message the runtime records.
 */
import type { State } from '../src/revision/state.ts';
import type { SecureBootMode } from './boot.ts';

export interface SignatureVerdict {
  ok: boolean;
  statusMsg?: string;
  detail?: string;
  warnings: string[];
}

export async function checkSignatures(stateText: string, state: State, mode: SecureBootMode): Promise<SignatureVerdict> {
  const sigKeys = Object.keys(state).filter((k) => k.startsWith('_sigs/'));
  if (sigKeys.length === 0) {
    const uncovered = Object.keys(state).filter((k) => k !== '#spec');
    if (mode === 'strict') return { ok: false, statusMsg: 'State not fully covered by signatures', detail: `no _sigs/*.json signature covers ${uncovered.length} keys`, warnings: [] };
    return { ok: true, warnings: mode === 'audit' ? [`state not fully covered by signatures: ${uncovered.length} keys unsigned`] : [] };
  }
  void stateText;
  return { ok: false, statusMsg: 'Signature validation failed', detail: `signed state (${sigKeys.join(', ')}) but pvs@2 verification is not available in this build`, warnings: [] };
}
