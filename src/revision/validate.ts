/**
 * Validate a revision (repo directory or export tarball) the way a device would accept it: canonical
 * state JSON, spec, keys, values, BSP, containers, groups, `_config` owners, every object present with its
 * sha256, every pvs@2 signature (and coverage in strict mode).
 */
import { decodeUtf8, isCanonical, isJsonObject, parseJsonWithPairs } from './canonical-json.ts';
import { openRevision } from './open-revision.ts';
import type { PvrRepo } from './pvr-repo.ts';
import { verifyStateSignatures, type SecurebootMode, type SignatureReport, type TrustOptions } from './signature.ts';
import { checkState, objectRefs, type Issue, type State } from './state.ts';

/** Check groups, in report order; each issue code belongs to one (one JUnit testcase per group). */
export const CHECK_GROUPS = ['json', 'spec', 'keys', 'values', 'bsp', 'containers', 'groups', 'config', 'objects', 'signatures', 'coverage'] as const;
export type CheckGroup = (typeof CHECK_GROUPS)[number];

const GROUP_OF: Record<string, CheckGroup> = {
  'json-syntax': 'json',
  'json-utf8': 'json',
  'json-depth': 'json',
  'json-number': 'json',
  canonical: 'json',
  spec: 'spec',
  key: 'keys',
  value: 'values',
  bsp: 'bsp',
  container: 'containers',
  group: 'groups',
  'config-owner': 'config',
  'object-missing': 'objects',
  'object-hash': 'objects',
  signature: 'signatures',
  'signature-trust': 'signatures',
  coverage: 'coverage',
};

export function checkGroupOf(issue: Issue): CheckGroup {
  return GROUP_OF[issue.code] ?? 'json';
}

/**
 * A further check run on a structurally valid revision (the extension point for `validate --boot`, which
 * the runtime provides). Its issues are reported under its own `name`: a code, and one JUnit testcase.
 */
export interface ExtraCheck {
  name: string;
  run(repo: PvrRepo): Promise<{ errors: Issue[]; warnings: Issue[] }>;
}

export interface ValidateOptions extends TrustOptions {
  mode: SecurebootMode;
  extraChecks?: ExtraCheck[];
}

export interface ValidationReport {
  valid: boolean;
  spec: string | null;
  /** Distinct objects the state references. */
  objects: number;
  /** Their total size (of those present). */
  bytes: number;
  errors: Issue[];
  warnings: Issue[];
  signatures: SignatureReport[];
  /** Names of the extra checks that ran (their issues carry the name as code). */
  extraChecks: string[];
}

/** Objects are hashed two at a time: enough to keep both cores busy without thrashing the disk. */
const VERIFY_CONCURRENCY = 2;

async function checkObjects(repo: PvrRepo, state: State, errors: Issue[]): Promise<{ objects: number; bytes: number }> {
  const refs = [...objectRefs(state)];
  let bytes = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < refs.length) {
      const [sha, keys] = refs[next++]!;
      const v = await repo.objects.verify(sha);
      const key = keys[0]!;
      const also = keys.length > 1 ? ` (also ${keys.slice(1).join(', ')})` : '';
      if (v.status === 'missing') errors.push({ code: 'object-missing', key, message: `object ${sha} of ${key}${also} is missing from ${repo.objects.dir}` });
      else if (v.status === 'mismatch') errors.push({ code: 'object-hash', key, message: `object ${sha} of ${key}${also} hashes to ${v.actual}: the object is corrupt` });
      if (v.status !== 'missing') bytes += v.size;
    }
  };
  await Promise.all(Array.from({ length: VERIFY_CONCURRENCY }, worker));
  return { objects: refs.length, bytes };
}

export async function validateRepo(repo: PvrRepo, options: ValidateOptions): Promise<ValidationReport> {
  const report: ValidationReport = { valid: false, spec: null, objects: 0, bytes: 0, errors: [], warnings: [], signatures: [], extraChecks: [] };
  const bytes = await repo.readStateBytes();
  let parsed;
  try {
    parsed = parseJsonWithPairs(bytes, repo.statePath);
  } catch (err) {
    const e = err as Issue & Error;
    report.errors.push({ code: e.code ?? 'json-syntax', message: `${repo.statePath}: ${e.message}` });
    return report;
  }
  if (!isJsonObject(parsed.value)) {
    report.errors.push({ code: 'spec', message: 'the state must be a JSON object' });
    return report;
  }
  const state = parsed.value;
  report.spec = typeof state['#spec'] === 'string' ? state['#spec'] : null;
  const canonical = isCanonical(decodeUtf8(bytes));
  if (!canonical) {
    report.errors.push({
      code: 'canonical',
      message: "the state JSON is not canonical (pvr's canonicaljson form): Pantavisor builds signature payloads from the stored bytes, so store it canonical (pvmigrate sign rewrites it so)",
    });
  }
  const structure = checkState(state);
  report.errors.push(...structure.errors);
  report.warnings.push(...structure.warnings);
  Object.assign(report, await checkObjects(repo, state, report.errors));
  // A canonical state is checked exactly as the device does (raw pairs in stored order); a non-canonical one,
  // already an error above, with pvr's payload so its signatures are still reported meaningfully.
  const sigs = verifyStateSignatures({ value: state, pairs: parsed.pairs }, options.mode, options, canonical ? 'runtime' : 'pvr');
  report.signatures = sigs.signatures;
  report.errors.push(...sigs.errors);
  report.warnings.push(...sigs.warnings);
  if (report.errors.length === 0) {
    for (const check of options.extraChecks ?? []) {
      const r = await check.run(repo);
      report.extraChecks.push(check.name);
      report.errors.push(...r.errors.map((e) => ({ ...e, code: check.name })));
      report.warnings.push(...r.warnings.map((w) => ({ ...w, code: check.name })));
    }
  }
  report.valid = report.errors.length === 0;
  return report;
}

/** Validate a repo directory, or an export tarball (imported into a temp repo that is removed afterwards). */
export async function validatePath(path: string, options: ValidateOptions): Promise<ValidationReport> {
  const rev = await openRevision(path);
  try {
    return await validateRepo(rev.repo, options);
  } finally {
    await rev.close();
  }
}

/** JUnit XML: one testcase per check group (and per extra check that ran), failures listing its errors. */
export function junitXml(report: ValidationReport, suite: string): string {
  const esc = (s: string): string => s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
  const byGroup = new Map<string, Issue[]>([...CHECK_GROUPS, ...report.extraChecks].map((g) => [g, []]));
  for (const e of report.errors) byGroup.get(report.extraChecks.includes(e.code) ? e.code : checkGroupOf(e))!.push(e);
  const failures = [...byGroup.values()].filter((l) => l.length).length;
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<testsuite name="${esc(suite)}" tests="${byGroup.size}" failures="${failures}" errors="0">`];
  for (const [group, issues] of byGroup) {
    lines.push(`  <testcase classname="pvmigrate.validate" name="${esc(group)}">`);
    if (issues.length) {
      const text = issues.map((i) => (i.key ? `${i.key}: ${i.message}` : i.message)).join('\n');
      lines.push(`    <failure message="${esc(`${issues.length} error(s): ${issues[0]!.message}`)}">${esc(text)}</failure>`);
    }
    lines.push('  </testcase>');
  }
  lines.push('</testsuite>', '');
  return lines.join('\n');
}
