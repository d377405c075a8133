import { openArtifact } from '../../importers/open.ts';
import type { Artifact, TrustOptions } from '../../importers/types.ts';
import { PvError } from '../errors.ts';
import type { TrustAnswers } from './answers.ts';
import type { Ask } from './ask.ts';

/** The trust flag each format uses, and how the wizard asks for it. */
interface TrustQuestion {
  field: keyof TrustAnswers;
  message: string;
}

/** What an artifact needs, read from an unverified first look (signature kind, encryption). */
function questionsFor(look: Artifact): TrustQuestion[] {
  const doc = look.toJSON() as Record<string, unknown>;
  switch (look.format) {
    case 'mender':
      return look.signed ? [{ field: 'key', message: 'Public key (PEM) that verifies manifest.sig' }] : [];
    case 'rauc':
      return [{ field: 'keyring', message: 'Keyring (PEM of trusted CA certificates) for the bundle signature' }];
    case 'swupdate': {
      const sig = (doc.signature as { type?: string } | undefined)?.type;
      const q: TrustQuestion[] = [];
      if (look.signed) q.push(sig === 'cms' ? { field: 'ca', message: 'CA certificate (PEM) that signed sw-description' } : { field: 'pubkey', message: 'RSA public key (PEM) that verifies sw-description.sig' });
      return q;
    }
  }
}

function toTrust(t: TrustAnswers, acceptUnverified: boolean): TrustOptions {
  return { ...t, noVerify: acceptUnverified || undefined };
}

/**
 * Settle the trust material for an artifact: recorded or flagged answers first, then questions at the
 * terminal. Returns the verified artifact (or the unverified one the user explicitly accepted).
 */
export async function settleTrust(
  file: string,
  given: { trust: TrustAnswers; acceptUnverified?: boolean },
  ask: Ask,
): Promise<{ artifact: Artifact; trust: TrustAnswers; acceptUnverified: boolean }> {
  const trust: TrustAnswers = { ...given.trust };
  let acceptUnverified = given.acceptUnverified ?? false;
  // Encrypted material is needed even to look: ask for it when the importer says so.
  let look: Artifact | undefined;
  while (!look) {
    try {
      look = await openArtifact(file, { ...trust, noVerify: true });
    } catch (err) {
      if (!(err instanceof PvError) || err.exitCode !== 2 || !/decrypt|aes/i.test(err.message) || !ask.interactive) throw err;
      ask.say(`  ${err.message}`);
      const field: keyof TrustAnswers = /aes/i.test(err.message) ? 'aesKey' : 'decryptKey';
      trust[field] = await ask.text(`trust.${field}`, field === 'aesKey' ? 'AES key file (swupdate format: key ivt)' : 'Private key (PEM) to decrypt the bundle');
    }
  }
  const questions = questionsFor(look);
  await look.close();

  for (;;) {
    for (const q of questions) {
      if (acceptUnverified || trust[q.field]) continue;
      const answer = (await ask.text(`trust.${q.field}`, `${q.message} (leave empty to accept it unverified)`)).trim();
      if (answer) trust[q.field] = answer;
      else {
        ask.say('  WARNING: without trust material the artifact\'s signature is not checked; anyone could have made it.');
        acceptUnverified = await ask.confirm('acceptUnverified', 'Accept this artifact unverified?', false);
        if (!acceptUnverified) return settleTrust(file, { trust, acceptUnverified }, ask);
      }
    }
    try {
      const artifact = await openArtifact(file, toTrust(trust, acceptUnverified));
      if (artifact.verified === false) {
        await artifact.close();
        throw new PvError('verification-failed', 'signature verification failed with the given trust material', { file });
      }
      return { artifact, trust, acceptUnverified };
    } catch (err) {
      if (!ask.interactive || !(err instanceof PvError)) throw err;
      ask.say(`  ${err.toLine()}`);
      for (const q of questions) delete trust[q.field];
      if (!(await ask.confirm('retryTrust', 'Try other trust material?', true))) throw err;
    }
  }
}
