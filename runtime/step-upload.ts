/**
 * `pvcontrol steps install`: send a revision to a running runtime the way a local client does: the state
 * to PUT /steps/locals/<name>, then every object to PUT /objects/<sha> (streamed from the repo).
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { basename, join } from 'node:path';
import { tmpdir } from 'node:os';
import { InvalidInputError, fromSystemError } from '../src/errors.ts';
import { importTarball } from '../src/revision/export.ts';
import { openRepo } from '../src/revision/pvr-repo.ts';
import { objectRefs } from '../src/revision/state.ts';
import { ctrlRequest } from './ctrl-client.ts';

function putFile(socketPath: string, path: string, file: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    void stat(file).then((st) => {
      const req = request({ socketPath, method: 'PUT', path, headers: { 'Content-Length': st.size } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      createReadStream(file).on('error', reject).pipe(req);
    }, reject);
  });
}

export async function installStep(socketPath: string, source: string, rev?: string): Promise<{ rev: string; objects: number }> {
  const st = await stat(source).catch((err) => {
    throw fromSystemError(err, source);
  });
  const name = rev ?? `locals/${basename(source).replace(/\.(tar\.gz|tgz|tar)$/, '')}`;
  let scratch: string | undefined;
  try {
    let repoDir = source;
    if (!st.isDirectory()) {
      scratch = await mkdtemp(join(tmpdir(), 'pvmigrate-step-'));
      repoDir = join(scratch, 'repo');
      await importTarball(source, repoDir);
    }
    const repo = await openRepo(repoDir);
    const bytes = await repo.readStateBytes();
    const answer = (what: string, r: { status: number; body: string }) => {
      if (r.status >= 200 && r.status < 300) return;
      let msg = r.body;
      try {
        msg = (JSON.parse(r.body) as { Error?: string }).Error ?? r.body;
      } catch {
        /* raw */
      }
      throw new InvalidInputError('step-refused', `${what} refused (${r.status}): ${msg}`, { file: source });
    };
    answer(`state ${name}`, await ctrlRequest(socketPath, 'PUT', `/steps/${name}`, bytes.toString('utf8')));
    const shas = [...objectRefs(await repo.readState()).keys()];
    for (const sha of shas) answer(`object ${sha}`, await putFile(socketPath, `/objects/${sha}`, repo.objects.path(sha)));
    return { rev: name, objects: shas.length };
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}
