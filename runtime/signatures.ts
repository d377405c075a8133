/**
 * Secure-boot check of a stored state at boot: the revision core's pvs@2 verification with Pantavisor's
 * payload rule (raw stored substrings, PV signature.c), its result string becoming the progress message.
 */
import { parseJsonWithPairs, isJsonObject } from '../src/revision/canonical-json.ts';
import { verifyStateSignatures, type SecurebootMode, type TrustOptions } from '../src/revision/signature.ts';

export interface SignatureVerdict {
  ok: boolean;
  /** Pantavisor's result string when refused. */
  statusMsg?: string;
  detail?: string;
  warnings: string[];
}

export function checkSignatures(stateText: string, mode: SecurebootMode, trust: TrustOptions = {}): SignatureVerdict {
  const { value, pairs } = parseJsonWithPairs(stateText);
  if (!isJsonObject(value)) return { ok: false, statusMsg: 'State JSON has bad format', detail: 'the state is not a JSON object', warnings: [] };
  const check = verifyStateSignatures({ value, pairs }, mode, trust, 'runtime');
  const line = (i: { key?: string; message: string }) => (i.key ? `${i.key}: ${i.message}` : i.message);
  return {
    ok: check.ok,
    statusMsg: check.ok ? undefined : check.result,
    detail: check.ok ? undefined : check.errors.slice(0, 5).map(line).join('; '),
    warnings: check.warnings.map(line),
  };
}
