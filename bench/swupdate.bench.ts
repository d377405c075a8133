import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fastest, measure, measurePvmigrate, report, type Measurement } from './measure.ts';

const MIB = 1 << 20;

function run(cmd: string, args: string[], cwd: string, input?: Buffer): void {
  const r = spawnSync(cmd, args, { cwd, input, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
}

/**
 * swupdate -c through a shell: its exit status in check mode is unreliable (reference §7), so the log decides;
 * GNU time still sees swupdate's peak RSS (the largest of the waited-for processes).
 */
function measureSwupdate(dir: string, swu: string, cert: string): Measurement {
  const log = join(dir, 'swupdate.log');
  const m = measure('sh', ['-c', `swupdate -c -i '${swu}' -k '${cert}' -H bench:1.0 > '${log}' 2>&1; exit 0`], { env: { ...process.env, TMPDIR: dir } });
  const text = spawnSync('cat', [log]).stdout.toString();
  if (!text.includes('SWUPDATE successful')) throw new Error(`swupdate -c did not accept the benchmark image:\n${text.slice(-2000)}`);
  return m;
}

/**
 * A ~200 MB CMS-signed .swu (180 MiB incompressible rootfs + 20 MiB of base64 text stored gzip-compressed):
 * `inspect` (signature, crc sum and sha256 of every member, gunzip of the compressed one) against
 * `swupdate -c` (the same checks, handlers replaced by dummy).
 */
export async function bench(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pvmigrate-swu-bench-'));
  try {
    const rootfs = randomBytes(180 * MIB);
    const app = gzipSync(Buffer.from(randomBytes(15 * MIB).toString('base64')), { level: 1 });
    await writeFile(join(dir, 'rootfs.img'), rootfs);
    await writeFile(join(dir, 'app.img.gz'), app);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    await writeFile(join(dir, 'sw-description'), `software = {
  version = "1.0";
  hardware-compatibility = ["1.0"];
  images = (
    { filename = "rootfs.img"; device = "/dev/null"; sha256 = "${sha(rootfs)}"; },
    { filename = "app.img.gz"; device = "/dev/null"; compressed = "zlib"; sha256 = "${sha(app)}"; }
  );
};`);
    run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-subj', '/CN=bench', '-days', '30', '-addext', 'extendedKeyUsage=emailProtection'], dir);
    run('openssl', ['cms', '-sign', '-in', 'sw-description', '-signer', 'cert.pem', '-inkey', 'key.pem', '-outform', 'DER', '-nosmimecap', '-binary', '-out', 'sw-description.sig'], dir);
    run('sh', ['-c', 'cpio -o -H crc > bench.swu 2>/dev/null'], dir, Buffer.from('sw-description\nsw-description.sig\nrootfs.img\napp.img.gz\n'));
    const swu = join(dir, 'bench.swu');
    const size = (await readFile(swu)).length;
    const cert = join(dir, 'cert.pem');
    // Warm the page cache for both, then take the better of two runs each.
    measurePvmigrate(['inspect', swu, '--ca', cert, '--json']);
    const peer = fastest([1, 2].map(() => measureSwupdate(dir, swu, cert)));
    const ours = fastest([1, 2].map(() => measurePvmigrate(['inspect', swu, '--ca', cert, '--json'])));
    report(`.swu ${(size / MIB).toFixed(0)} MiB CMS-signed, inspect + verify (crc, sha256, gunzip)`, ours, peer, 'swupdate -c');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
