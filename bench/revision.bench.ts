// Revision core on a 1 GiB object: validate (re-hash), export (tar and gzip) and import, against the
// same byte work done by sha256sum and GNU tar. Peak RSS shows the streams stay bounded.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initRepo } from '../src/revision/pvr-repo.ts';
import { fastest, measure, measurePvmigrate, report, writeRootfsLikeImage, type Measurement } from './measure.ts';

const SIZE_MIB = 1024;

const twice = (f: () => Measurement): Measurement => fastest([f(), f()]);

export async function bench(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-bench-revision-'));
  try {
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'bsp'), { recursive: true });
    await mkdir(join(tree, 'os'), { recursive: true });
    await writeFile(join(tree, 'bsp/run.json'), '{"fit":"pantavisor.fit"}');
    await writeFile(join(tree, 'bsp/pantavisor.fit'), 'fit');
    await writeFile(join(tree, 'os/run.json'), '{"#spec":"service-manifest-run@1","name":"os","type":"lxc","config":"lxc.container.conf","root-volume":"root.squashfs"}');
    await writeFile(join(tree, 'os/lxc.container.conf'), 'lxc.uts.name = os\n');
    await writeRootfsLikeImage(join(tree, 'os/root.squashfs'), SIZE_MIB, 'revision-bench');
    const repoDir = join(dir, 'repo');
    const repo = await initRepo(repoDir);
    const t0 = process.hrtime.bigint();
    await repo.commitTree(tree);
    const commitSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`commitTree of a ${SIZE_MIB} MiB object (in process, hash + copy + fsync): ${commitSeconds.toFixed(2)} s`);
    const objects = join(repoDir, '.pvr/objects');
    spawnSync('sh', ['-c', `cat ${objects}/* > /dev/null`]);

    report(
      `validate ${SIZE_MIB} MiB revision (whole CLI run)`,
      twice(() => measurePvmigrate(['validate', repoDir])),
      twice(() => measure('sh', ['-c', `sha256sum ${objects}/*`])),
      'sha256sum',
    );
    const tar = join(dir, 'rev.tar');
    report(
      `export ${SIZE_MIB} MiB revision to tar`,
      twice(() => measurePvmigrate(['export', repoDir, '-o', tar])),
      twice(() => measure('tar', ['-cf', join(dir, 'peer.tar'), '-C', join(repoDir, '.pvr'), 'json', 'objects'])),
      'GNU tar -c',
    );
    report(
      `export ${SIZE_MIB} MiB revision to tgz`,
      measurePvmigrate(['export', repoDir, '-o', join(dir, 'rev.tgz')]),
      measure('tar', ['-czf', join(dir, 'peer.tgz'), '-C', join(repoDir, '.pvr'), 'json', 'objects']),
      'GNU tar -cz',
    );
    const importRun = (): Measurement => {
      spawnSync('rm', ['-rf', join(dir, 'imported')]);
      return measurePvmigrate(['import', tar, '-o', join(dir, 'imported')]);
    };
    const peerImport = (): Measurement => {
      spawnSync('rm', ['-rf', join(dir, 'x')]);
      spawnSync('mkdir', [join(dir, 'x')]);
      return measure('sh', ['-c', `tar -xf ${tar} -C ${join(dir, 'x')} && sha256sum ${join(dir, 'x')}/objects/* >/dev/null && sync -f ${join(dir, 'x')}`]);
    };
    report(`import ${SIZE_MIB} MiB tar (hash-checked, fsynced)`, twice(importRun), twice(peerImport), 'tar -x + sha256sum + sync');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
