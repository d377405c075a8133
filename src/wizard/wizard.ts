import { rmSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Artifact } from '../../importers/types.ts';
import { openInput, unzipIfNeeded } from '../convert/inputs.ts';
import { convertInto, planFor, refuseExisting, reviewPathFor, workDirFor } from '../convert/pipeline.ts';
import type { Progress } from '../convert/progress.ts';
import { InvalidInputError } from '../errors.ts';
import { fsyncDir, writeFileAtomically } from '../fs/atomic.ts';
import { formatBytes } from '../report/format.ts';
import { reportFromConvert } from '../report/from-results.ts';
import { writeReport } from '../report/html.ts';
import { initRepo } from '../revision/pvr-repo.ts';
import { validatePath } from '../revision/validate.ts';
import { ANSWERS_SPEC, readAnswers, type Answers, type PartialAnswers } from './answers.ts';
import { replayAsk, terminalAsk, type Ask } from './ask.ts';
import { discoverInputs, inputKind } from './discover.ts';
import { settlePlan } from './plan-step.ts';
import { settleTrust } from './trust-step.ts';

export interface WizardOptions {
  /** Where to look for artifacts. */
  dir: string;
  /** Answers given as flags; they win over a recorded session. */
  flags: PartialAnswers;
  /** Replay this recorded session without a terminal. */
  answersFile?: string;
  json: boolean;
  /** Also write the report (and its JSON) here, as `convert --report` does. */
  reportFile?: string;
}

export interface WizardResult {
  output: string;
  repo: string;
  revision: string;
  valid: boolean;
  files: { plan: string; answers: string; report: string; reportJson: string };
  next: string[];
}

/** Exit status of a wizard stopped by Ctrl-C, as shells report SIGINT. */
export const CANCELLED_EXIT = 130;

async function chooseInput(dir: string, ask: Ask): Promise<string> {
  ask.say(`Looking for artifacts in ${dir} …`);
  const found = await discoverInputs(dir);
  for (;;) {
    let file: string;
    if (found.length === 0) {
      ask.say('  none found by content (.mender, .raucb, .swu, .zip, filesystem or disk images)');
      file = (await ask.text('input', 'Path of the artifact to convert')).trim();
    } else {
      const other = '\0other';
      file = await ask.select('input', 'Artifact to convert', [
        ...found.map((f) => ({ title: `${basename(f.file)}  (${f.kind}, ${formatBytes(f.bytes)})`, value: f.file })),
        { title: 'Another path …', value: other },
      ]);
      if (file === other) file = (await ask.text('input', 'Path of the artifact to convert')).trim();
    }
    if (file && (await inputKind(file).catch(() => undefined))) return file;
    ask.say(`  ${file || '(empty)'}: not an artifact or image pvmigrate can read`);
  }
}

/** Read every payload once through its verifying stream, showing bytes per payload as they go. */
async function verifyPayloads(artifact: Artifact, ask: Ask, tty: boolean): Promise<void> {
  const total = artifact.payloads.reduce((s, p) => s + p.size, 0);
  const started = Date.now();
  let done = 0;
  for (const p of artifact.payloads) {
    let seen = 0;
    let last = 0;
    await pipeline(
      p.stream(),
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          seen += chunk.length;
          done += chunk.length;
          const now = Date.now();
          if (tty && now - last > 100) {
            last = now;
            const rate = done / Math.max(0.001, (now - started) / 1000);
            const eta = rate > 0 ? Math.ceil((total - done) / rate) : 0;
            process.stderr.write(`\r  ${p.name}: ${formatBytes(seen)} / ${formatBytes(p.size)}  (ETA ${eta} s)   `);
          }
          cb();
        },
      }),
    );
    if (tty) process.stderr.write('\r\x1b[K');
    ask.say(`  ✔ ${p.name}: ${formatBytes(p.size)} sha256 ${p.sha256.slice(0, 16)}… verified`);
  }
}

/** listr2 task list on a terminal, plain lines otherwise. */
async function runTasks(tasks: { title: string; task: (progress: Progress) => Promise<void> }[], ask: Ask, tty: boolean): Promise<void> {
  if (!tty) {
    for (const t of tasks) {
      ask.say(`${t.title} …`);
      await t.task({
        phase: (title, work) => {
          ask.say(`  ${title}`);
          return work((note) => ask.say(`    ${note}`));
        },
      });
    }
    return;
  }
  const { Listr } = await import('listr2');
  await new Listr(
    tasks.map((t) => ({
      title: t.title,
      task: async (_ctx: unknown, task: { output: string }) => {
        await t.task({
          phase: async (title, work) => {
            task.output = title;
            return work((note) => (task.output = `${title}: ${note}`));
          },
        });
      },
      rendererOptions: { persistentOutput: false },
    })),
    { exitOnError: true, rendererOptions: { collapseSubtasks: false } },
  ).run();
}

export async function runWizard(opts: WizardOptions): Promise<WizardResult> {
  const out = opts.json ? process.stderr : process.stdout;
  const tty = Boolean(process.stdin.isTTY && out.isTTY);
  const ask: Ask = !opts.answersFile && tty ? await terminalAsk(out) : replayAsk(opts.answersFile, out);
  const recorded = opts.answersFile ? await readAnswers(opts.answersFile) : {};
  const given: PartialAnswers = { ...recorded, ...opts.flags, trust: { ...recorded.trust, ...opts.flags.trust } };

  // 1. the input and its trust material
  const input = resolve(given.input ?? (await chooseInput(opts.dir, ask)));
  if (!(await inputKind(input))) throw new InvalidInputError('unknown-format', 'not an artifact or image pvmigrate can read', { file: input });
  const output = resolve(given.output ?? (await ask.text('output', 'Output directory (must not exist yet)', join(dirname(input), 'pvmigrate-out'))).trim());
  await refuseExisting(output);

  const work = await workDirFor(output);
  // Ctrl-C outside a prompt (during conversion): nothing but the work directory exists yet, so removing it
  // leaves nothing half-written.
  const onSigint = () => {
    rmSync(work, { recursive: true, force: true });
    process.stderr.write('\ncancelled; nothing was written\n');
    process.exit(CANCELLED_EXIT);
  };
  process.once('SIGINT', onSigint);
  try {
    // The artifact inside a zip is looked at here for its trust material; openInput unpacks it again for the plan.
    const look = join(work, 'look');
    await mkdir(look);
    const members = await unzipIfNeeded(input, look);
    if (members.length === 0) throw new InvalidInputError('zip-members', 'the zip holds no files', { file: input });
    let chosen = members[0]!;
    let isArtifact = false;
    for (const m of members) {
      if (['mender', 'rauc', 'swupdate'].includes((await inputKind(m.file)) ?? '')) {
        [chosen, isArtifact] = [m, true];
        break;
      }
    }
    let trust = given.trust ?? {};
    let acceptUnverified = given.acceptUnverified ?? false;
    if (isArtifact) {
      ask.say(`Inspecting ${chosen.display} …`);
      const settled = await settleTrust(chosen.file, { trust, acceptUnverified: given.acceptUnverified }, ask);
      // Recorded absolute, so a replay from another directory finds the same files.
      trust = Object.fromEntries(Object.entries(settled.trust).map(([k, v]) => [k, resolve(v)]));
      acceptUnverified = settled.acceptUnverified;
      try {
        ask.say(`  ${settled.artifact.format}, ${settled.artifact.signed ? (acceptUnverified ? 'signed, accepted UNVERIFIED' : 'signature verified') : 'unsigned'}; ${settled.artifact.payloads.length} payloads`);
        await verifyPayloads(settled.artifact, ask, tty);
      } finally {
        await settled.artifact.close();
      }
    }
    const trustOptions = { ...trust, noVerify: acceptUnverified || undefined };

    // 2. the plan
    const scratch = join(work, 'scratch');
    const src = await openInput(input, work, trustOptions, { phase: (_title, run) => run(() => undefined) });
    try {
      const initrdAnswer = given.initrd !== undefined ? given.initrd : (await ask.text('initrd', 'Runtime initrd for bsp/pv-initrd.img (empty: the runtime\'s own, built for this machine)')).trim() || null;
      const initrd = initrdAnswer && resolve(initrdAnswer);
      const detected = await planFor(src, { initrd: initrd ?? undefined });
      const { plan, edits } = await settlePlan(src, detected, given.edits ?? [], ask, opts.answersFile);

      // 3. what to do with the result
      const signAnswer = given.signKey !== undefined ? given.signKey : (await ask.text('signKey', 'Private key (PEM) to sign the revision (empty: unsigned)')).trim() || null;
      const signKey = signAnswer && resolve(signAnswer);
      const boot = given.boot ?? (await ask.confirm('boot', 'Boot the result in the runtime now and show each container\'s status?', true));

      const stage = join(work, 'out');
      await mkdir(stage);
      const repoDir = join(stage, 'repo');
      const finalRepo = join(output, 'repo');
      let revision = '';
      let valid = false;
      const planFile = join(stage, 'plan.json');
      let data: Parameters<typeof writeReport>[1] | undefined;
      let bootLines = '';
      let bootRows: { check: string; ok: boolean; message: string }[] = [];
      await runTasks(
        [
          {
            title: 'Convert',
            task: async (progress) => {
              await writeFileAtomically(planFile, JSON.stringify(plan, null, 2) + '\n');
              const repo = await initRepo(repoDir);
              const built = await convertInto(repo, src, plan, {
                planFile,
                scratch,
                progress,
                repoPath: finalRepo,
                reviewPath: reviewPathFor(finalRepo),
                reviewDir: join(stage, basename(reviewPathFor(finalRepo))),
                sign: signKey ? { key: signKey } : undefined,
              });
              revision = built.report.revision;
              const validation = await progress.phase('validate', () => validatePath(repoDir, { mode: 'lenient' }));
              valid = validation.valid;
              if (boot && valid) {
                const { bootCheck, formatBootCheck } = await import('../../runtime/boot-check.ts');
                const booted = await progress.phase('boot in the runtime', () => bootCheck(repoDir, { timeout: 60 }));
                bootLines = formatBootCheck(booted);
                valid = booted.ok;
                bootRows = booted.containers.map((c) => ({ check: `boot ${c.name}`, ok: c.reached, message: `${c.status} (goal ${c.status_goal}, group ${c.group})` }));
                if (booted.refused) bootRows.push({ check: 'boot', ok: false, message: booted.refused });
              }
              data = reportFromConvert(built.report, { validation });
              data.validation.push(...bootRows);
            },
          },
        ],
        ask,
        tty,
      );

      if (bootLines) ask.say(bootLines);

      // 4. the record of the session, the report, and the rename that makes it all appear at once
      const answers: Answers = { '#spec': ANSWERS_SPEC, input, trust, acceptUnverified, initrd, edits, boot, signKey, output };
      await writeFileAtomically(join(stage, 'answers.json'), JSON.stringify(answers, null, 2) + '\n');
      await writeReport(join(stage, 'report.html'), data!);
      if (opts.reportFile) await writeReport(resolve(opts.reportFile), JSON.parse(JSON.stringify(data).replaceAll(stage, output)) as typeof data & object);
      await rename(stage, output);
      await fsyncDir(dirname(output));
      const files = { plan: join(output, 'plan.json'), answers: join(output, 'answers.json'), report: join(output, 'report.html'), reportJson: join(output, 'report.json') };
      const next = [
        `pvmigrate validate ${finalRepo}`,
        `pvmigrate deploy ${finalRepo} --storage /path/to/storage`,
        `pvmigrate export ${finalRepo} -o ${join(output, 'revision.tgz')}`,
        `cd ${finalRepo} && pvr post <your device's trails URL>`,
        `pvmigrate wizard --answers ${files.answers}   (replays this session)`,
      ];
      return { output, repo: finalRepo, revision, valid, files, next };
    } finally {
      await src.close();
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
    await rm(work, { recursive: true, force: true });
  }
}
