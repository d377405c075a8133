import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Test material for RAUC: a throw-away PKI made with openssl (root CA, intermediate CA, RSA and ECDSA
 * leaves, a codeSigning-only leaf, an expired leaf, an unrelated root) and bundles made with the real
 * `rauc bundle`. Used by test/rauc-*.test.ts and bench/rauc.bench.ts; everything goes into a given directory.
 */
function run(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

export interface Pki {
  dir: string;
  /** Keyring: root CA only (the intermediate travels in the CMS). */
  rootCa: string;
  /** A root that signed nothing here (the "wrong keyring"). */
  otherCa: string;
  intermediate: string;
  rsa: { cert: string; key: string };
  ec: { cert: string; key: string };
  codeSigning: { cert: string; key: string };
  expired: { cert: string; key: string };
}

const CA_EXT = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n';
const LEAF_EXT = 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nsubjectKeyIdentifier=hash\n';

export function makePki(dir: string): Pki {
  mkdirSync(dir, { recursive: true });
  const p = (n: string): string => join(dir, n);
  writeFileSync(p('ca.ext'), CA_EXT);
  writeFileSync(p('leaf.ext'), LEAF_EXT);
  writeFileSync(p('code.ext'), LEAF_EXT + 'extendedKeyUsage=codeSigning\n');
  const key = (name: string, type: 'rsa' | 'ec'): string => {
    const args = type === 'rsa' ? ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'] : ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
    run('openssl', ['genpkey', ...args, '-out', p(`${name}.key`)]);
    return p(`${name}.key`);
  };
  const selfSigned = (name: string, cn: string): string => {
    key(name, 'rsa');
    run('openssl', ['req', '-x509', '-new', '-key', p(`${name}.key`), '-subj', `/O=pvmigrate test/CN=${cn}`, '-days', '3650', '-sha256', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', p(`${name}.pem`)]);
    return p(`${name}.pem`);
  };
  const issue = (name: string, cn: string, type: 'rsa' | 'ec', issuer: string, ext: string): { cert: string; key: string } => {
    key(name, type);
    run('openssl', ['req', '-new', '-key', p(`${name}.key`), '-subj', `/O=pvmigrate test/CN=${cn}`, '-out', p(`${name}.csr`)]);
    run('openssl', ['x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${issuer}.pem`), '-CAkey', p(`${issuer}.key`), '-CAcreateserial', '-days', '3650', '-sha256', '-extfile', p(ext), '-out', p(`${name}.pem`)]);
    return { cert: p(`${name}.pem`), key: p(`${name}.key`) };
  };
  const rootCa = selfSigned('root', 'Test Root CA');
  const otherCa = selfSigned('other', 'Unrelated Root CA');
  issue('intermediate', 'Test Intermediate CA', 'rsa', 'root', 'ca.ext');
  const rsa = issue('rsa', 'Release RSA', 'rsa', 'intermediate', 'leaf.ext');
  const ec = issue('ec', 'Release ECDSA', 'ec', 'root', 'leaf.ext');
  const codeSigning = issue('code', 'Release codeSigning only', 'rsa', 'root', 'code.ext');
  // Expired leaf: `openssl ca` is the only 3.0 tool that takes explicit start and end dates.
  key('expired', 'rsa');
  run('openssl', ['req', '-new', '-key', p('expired.key'), '-subj', '/O=pvmigrate test/CN=Release expired', '-out', p('expired.csr')]);
  writeFileSync(p('index.txt'), '');
  writeFileSync(p('serial'), '1000\n');
  writeFileSync(
    p('ca.cnf'),
    `[ca]\ndefault_ca=c\n[c]\ndatabase=${p('index.txt')}\nserial=${p('serial')}\nnew_certs_dir=${dir}\ndefault_md=sha256\npolicy=pol\nunique_subject=no\nx509_extensions=ext\n[pol]\nO=supplied\nCN=supplied\n[ext]\n${LEAF_EXT}`,
  );
  run('openssl', ['ca', '-batch', '-config', p('ca.cnf'), '-cert', rootCa, '-keyfile', p('root.key'), '-startdate', '20200101000000Z', '-enddate', '20210101000000Z', '-notext', '-in', p('expired.csr'), '-out', p('expired.pem')]);
  return { dir, rootCa, otherCa, intermediate: p('intermediate.pem'), rsa, ec, codeSigning, expired: { cert: p('expired.pem'), key: p('expired.key') } };
}

export interface BundleSpec {
  /** File name → content, written into the bundle's content directory. */
  files: Record<string, Buffer | string>;
  manifest: string;
  signer: { cert: string; key: string };
  intermediate?: string;
  mksquashfsArgs?: string;
}

/** `rauc bundle` of a content directory; returns the bundle path. */
export function buildBundle(dir: string, name: string, spec: BundleSpec): string {
  const content = join(dir, `${name}.d`);
  mkdirSync(content, { recursive: true });
  writeFileSync(join(content, 'manifest.raucm'), spec.manifest);
  for (const [f, data] of Object.entries(spec.files)) writeFileSync(join(content, f), data);
  const out = join(dir, `${name}.raucb`);
  const args = ['bundle', `--cert=${spec.signer.cert}`, `--key=${spec.signer.key}`];
  if (spec.intermediate) args.push(`--intermediate=${spec.intermediate}`);
  if (spec.mksquashfsArgs) args.push(`--mksquashfs-args=${spec.mksquashfsArgs}`);
  run('rauc', [...args, content, out]);
  return out;
}

/** Deterministic pseudo-random bytes (incompressible, so squashfs sizes and verity levels are predictable). */
export function noise(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  return out;
}

export interface RaucInfo {
  code: number;
  stderr: string;
  compatible?: string;
  version?: string | null;
  images: { slotClass: string; variant: string | null; filename: string; sha256: string; size: number }[];
}

/** `rauc info --output-format=json`, reduced to what our inspect must agree with. */
export function raucInfo(bundle: string, args: string[]): RaucInfo {
  const r = spawnSync('rauc', ['info', '--output-format=json', ...args, bundle], { encoding: 'utf8' });
  if (r.status !== 0) return { code: r.status ?? -1, stderr: r.stderr, images: [] };
  // OpenSSL prints its error queue (aes-wrap failures of other EC recipients) to stdout before the JSON.
  const j = JSON.parse(r.stdout.split('\n').filter((l) => l.startsWith('{')).at(-1) ?? '') as { compatible: string; version: string | null; images: Record<string, { variant: string | null; filename: string; checksum: string; size: number }>[] };
  return {
    code: 0,
    stderr: r.stderr,
    compatible: j.compatible,
    version: j.version,
    images: j.images.flatMap((o) => Object.entries(o).map(([slotClass, i]) => ({ slotClass, variant: i.variant, filename: i.filename, sha256: i.checksum, size: i.size }))),
  };
}

/**
 * A plain bundle assembled by hand exactly as `rauc bundle` frames it (squashfs ‖ detached CMS ‖ u64 BE
 * size), for manifests rauc would rewrite or refuse (e.g. a wrong image sha256).
 */
export function handmadePlainBundle(dir: string, name: string, files: Record<string, Buffer | string>, signer: { cert: string; key: string }): string {
  const content = join(dir, `${name}.d`);
  mkdirSync(content, { recursive: true });
  for (const [f, data] of Object.entries(files)) writeFileSync(join(content, f), data);
  const sq = join(dir, `${name}.sqfs`);
  run('mksquashfs', [content, sq, '-noappend', '-no-progress', '-all-root', '-no-xattrs', '-quiet']);
  const cms = join(dir, `${name}.cms`);
  run('openssl', ['cms', '-sign', '-binary', '-md', 'sha256', '-in', sq, '-signer', signer.cert, '-inkey', signer.key, '-outform', 'DER', '-out', cms]);
  const sig = readFileSync(cms);
  const len = Buffer.alloc(8);
  len.writeBigUInt64BE(BigInt(sig.length));
  const out = join(dir, `${name}.raucb`);
  writeFileSync(out, Buffer.concat([readFileSync(sq), sig, len]));
  return out;
}
