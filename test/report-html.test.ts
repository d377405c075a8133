import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeReport } from '../src/report/html.ts';
import { formatBytes } from '../src/report/format.ts';
import type { ReportData } from '../src/report/report-data.ts';
import { repoRoot, runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/env.ts';

const chromium = '/usr/bin/chromium';
const chromiumSkip = existsSync(chromium)
  ? false
  : process.env.CI === 'true'
    ? (() => {
        throw new Error('CI=true but chromium is missing: .ci/run must install it');
      })()
    : 'chromium not installed (apt-get install chromium)';

const data: ReportData = {
  title: 'Migration of acme-gw 1.0 → 1.1',
  generated: '2026-11-25',
  inputs: [{ file: 'acme-1.0.mender', format: 'mender', bytes: 48_123_456, sha256: 'ab'.repeat(32) }],
  breakdown: [
    { part: 'bsp', kind: 'bsp', bytes: 9_500_000 },
    { part: 'os', kind: 'base', bytes: 31_000_000 },
    { part: 'webapp', kind: 'app', bytes: 2_400_000 },
    { part: 'removed updater', kind: 'removed', bytes: 5_100_000 },
  ],
  releases: [
    { name: '1.0', artifactBytes: 48_123_456, bytesToShip: 42_900_000, reboot: true, changedKeys: ['bsp/kernel.img'] },
    { name: '1.1', artifactBytes: 48_200_000, bytesToShip: 120_000, reboot: false, changedKeys: ['webapp/root.ovl.squashfs'] },
  ],
  removed: [{ path: '/usr/bin/mender', reason: 'Mender client', bytes: 5_000_000 }],
  review: [{ kind: 'script', item: 'ArtifactInstall_Leave_50', note: 'state script: review <and> port' }],
  validation: [{ check: 'signatures', ok: true, message: '1 signature verified' }],
};

test('report is one self-contained page whose JSON twin holds the same data', async (t) => {
  const dir = await tempDir(t);
  const { html, json } = await writeReport(join(dir, 'report.html'), data);
  const page = await readFile(html, 'utf8');
  assert.deepEqual(JSON.parse(await readFile(json, 'utf8')), data);
  // Self-contained: no external fetches of any kind, and user text is escaped.
  assert.doesNotMatch(page, /<(script|link|img)\b|\bsrc=|url\(/i);
  assert.match(page, /review &lt;and&gt; port/);
});

const samples = join(repoRoot, 'samples', 'artifacts');

test('convert --report and fleet --report hold the numbers the commands print with --json', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const initrd = join(samples, 'initrd.img');
  const conv = await runCli(['convert', join(samples, 'release-1.0.raucb'), '--keyring', join(samples, 'ca.pem'), '--initrd', initrd, '-o', join(dir, 'repo'), '--report', join(dir, 'convert.html'), '--json']);
  assert.equal(conv.code, 0, conv.stderr);
  const c = JSON.parse(conv.stdout);
  const cr = JSON.parse(await readFile(join(dir, 'convert.json'), 'utf8')) as ReportData;
  assert.deepEqual(
    cr.breakdown.filter((p) => p.kind !== 'removed').map((p) => [p.part, p.bytes]),
    [['bsp', c.bsp.bytes], ...c.containers.map((k: { name: string; bytes: number }) => [k.name, k.bytes])],
  );
  assert.deepEqual(cr.removed.map((r) => r.path), c.removed.map((r: { path: string }) => r.path));
  assert.ok(cr.removed.every((r) => r.bytes > 0), 'removed files carry their source sizes');
  assert.ok(cr.validation.length > 0 && cr.validation.every((v) => v.ok), 'the converted revision validates');
  assert.equal(cr.inputs[0]!.format, 'rauc');

  const fl = await runCli(['fleet', join(samples, 'release-1.0.mender'), join(samples, 'release-1.1.mender'), '--initrd', initrd, '-o', join(dir, 'fleet'), '--report', join(dir, 'fleet.html'), '--json']);
  assert.equal(fl.code, 0, fl.stderr);
  const f = JSON.parse(fl.stdout);
  const fr = JSON.parse(await readFile(join(dir, 'fleet.json'), 'utf8')) as ReportData;
  assert.deepEqual(
    fr.releases.map((r) => [r.artifactBytes, r.bytesToShip, r.reboot]),
    f.steps.map((s: { artifactBytes: number; bytesToShip: number; reboot: boolean }) => [s.artifactBytes, s.bytesToShip, s.reboot]),
  );
  // The one-line app change ships a sliver of the artifact, without a reboot.
  assert.ok(fr.releases[1]!.bytesToShip < fr.releases[1]!.artifactBytes / 100);
  assert.equal(fr.releases[1]!.reboot, false);
});

test('charts drawn by headless Chromium match the report JSON', { skip: chromiumSkip, timeout: 60_000 }, async (t) => {
  const { chromium: pw } = await import('playwright-core');
  const dir = await tempDir(t);
  const { html } = await writeReport(join(dir, 'report.html'), data);
  const browser = await pw.launch({
    executablePath: chromium,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(`file://${html}`);
  assert.deepEqual(requests.filter((u) => !u.startsWith('file://')), [], 'the page must not fetch anything');

  for (const [chartId, expected] of [
    ['chart-breakdown', data.breakdown.map((p) => ({ label: p.part, value: p.bytes }))],
    ['chart-releases', data.releases.flatMap((r) => [
      { label: `${r.name} artifact`, value: r.artifactBytes },
      { label: `${r.name} update`, value: r.bytesToShip },
    ])],
  ] as const) {
    const drawn = await page.$$eval(`#${chartId} g.bar`, (groups) =>
      groups.map((g) => ({
        label: g.getAttribute('data-label'),
        value: Number(g.getAttribute('data-value')),
        width: (g.querySelector('rect') as SVGRectElement).getBBox().width,
        caption: (g.querySelectorAll('text')[1] as SVGTextElement).textContent,
      })),
    );
    assert.deepEqual(drawn.map((d) => ({ label: d.label, value: d.value })), expected);
    // Rendered bar lengths are proportional to the numbers, and each caption prints its number.
    const max = Math.max(...expected.map((e) => e.value));
    for (const d of drawn) {
      assert.ok(Math.abs(d.width - (420 * d.value) / max) <= 1.01, `${chartId} ${d.label}: width ${d.width} for ${d.value}`);
      assert.equal(d.caption, formatBytes(d.value));
    }
  }
  const artifacts = join(repoRoot, 'test', 'artifacts');
  await mkdir(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'report.png'), fullPage: true });
});
