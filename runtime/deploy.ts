/**
 * Install a revision into a storage directory: objects first (each hashed against its name), then the
 * state verbatim, the trail links, the progress, and last the boot environment (the commit point), so an
 * interrupted deploy never leaves a bootable half-revision.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError, fromSystemError } from '../src/errors.ts';
import { importTarball } from '../src/revision/export.ts';
import { parseJson, isJsonObject } from '../src/revision/canonical-json.ts';
import { openRepo } from '../src/revision/pvr-repo.ts';
import { objectRefs, type State } from '../src/revision/state.ts';
import type { ObjectStore } from '../src/revision/object-store.ts';
import { Storage, checkRevisionName } from './storage.ts';

export interface RevisionSource {
  /** The state exactly as stored (signatures cover these bytes). */
  stateBytes: Buffer;
  objects: ObjectStore;
  /** Where it came from, for messages. */
  file: string;
}

export interface DeployResult {
  rev: string;
  objects: number;
  objectsAdded: number;
  bootEnvUpdated: boolean;
}

/** A pvr repository (a checkout with .pvr/json) as a revision source. */
export async function repoSource(dir: string): Promise<RevisionSource> {
  const repo = await openRepo(dir);
  return { stateBytes: await repo.readStateBytes(), objects: repo.objects, file: repo.statePath };
}

export async function deploy(storageDir: string, source: RevisionSource, options: { rev?: string } = {}): Promise<DeployResult> {
  const rev = checkRevisionName(options.rev ?? '0');
  const value = parseJson(source.stateBytes, source.file);
  if (!isJsonObject(value)) throw new InvalidInputError('state-format', 'State JSON has bad format: the state must be a JSON object', { file: source.file });
  const state: State = value;
  const storage = new Storage(storageDir);
  let added = 0;
  const refs = objectRefs(state);
  for (const [sha, keys] of refs) {
    if (await storage.objects.has(sha)) continue;
    if (!(await source.objects.has(sha))) {
      throw new InvalidInputError('missing-object', `object ${sha} (${keys[0]}) is missing from the source; it cannot be deployed`, { file: source.objects.path(sha) });
    }
    await storage.objects.putExpected(sha, source.objects.open(sha), source.objects.path(sha));
    added++;
  }
  await storage.writeState(rev, source.stateBytes.toString('utf8'));
  await storage.linkTrail(rev, state);
  const factory = rev === '0';
  await storage.writeProgress(rev, factory ? { status: 'DONE', 'status-msg': 'Factory revision', progress: 100, retries: 0 } : { status: 'NEW', 'status-msg': 'Update ready to be run', progress: 0, retries: 0 });
  if (factory) await storage.markDone(rev);
  // The first revision of a device becomes its boot revision; later named revisions wait for a run command.
  const env = await storage.readBootEnv().catch(() => undefined);
  let bootEnvUpdated = false;
  if (!env || factory) {
    await storage.writeBootEnv({ pv_rev: rev });
    bootEnvUpdated = true;
  }
  return { rev, objects: refs.size, objectsAdded: added, bootEnvUpdated };
}

/** Deploy a pvr repo directory or an export tarball (imported into a scratch repo inside the storage first). */
export async function deployFrom(source: string, storageDir: string, options: { rev?: string } = {}): Promise<DeployResult> {
  const st = await stat(source).catch((err) => {
    throw fromSystemError(err, source);
  });
  if (st.isDirectory()) return deploy(storageDir, await repoSource(source), options);
  await mkdir(storageDir, { recursive: true });
  const scratch = join(storageDir, `.import-${process.pid}`);
  await rm(scratch, { recursive: true, force: true });
  try {
    await importTarball(source, scratch);
    return await deploy(storageDir, await repoSource(scratch), options);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
