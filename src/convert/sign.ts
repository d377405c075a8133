import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { EnvironmentError, fromSystemError } from '../errors.ts';
import type { JsonObject } from '../revision/canonical-json.ts';
import { signState } from '../revision/signature.ts';

export interface SignRequest {
  /** Private key PEM file. */
  key: string;
  /** Certificate chain PEM file, leaf first. */
  x5c?: string;
}

async function readPem(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw fromSystemError(err, file);
  }
}

/**
 * Sign the whole revision with one pvs@2 signature `_sigs/pvmigrate.json`: every top-level part as `<part>/**`
 * plus `#spec`, so a device in strict secure-boot mode finds every key covered.
 */
export async function signRevision(state: JsonObject, req: SignRequest): Promise<JsonObject> {
  let key;
  try {
    key = createPrivateKey(await readPem(req.key));
  } catch (err) {
    if (err instanceof EnvironmentError) throw err;
    throw new EnvironmentError('bad-key', `not a private key in PEM: ${(err as Error).message}`, { file: req.key });
  }
  let x5c: X509Certificate[] | undefined;
  if (req.x5c) {
    const blocks = (await readPem(req.x5c)).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new EnvironmentError('bad-x5c', 'no PEM certificate found', { file: req.x5c });
    x5c = blocks.map((b) => new X509Certificate(b));
  }
  const parts = [...new Set(Object.keys(state).filter((k) => k.includes('/') && !k.startsWith('_sigs/')).map((k) => k.slice(0, k.indexOf('/'))))].sort();
  const include = ['#spec', ...parts.map((p) => `${p}/**`)];
  return signState(state, { name: 'pvmigrate', key, match: { include, exclude: [] }, x5c }).state;
}
