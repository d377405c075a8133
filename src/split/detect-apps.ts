import type { PlanContainer, PlanRemoval, PlanReview } from './plan.ts';
import { splitShellWords } from '../util/shell-words.ts';
import { isUnder, parentOf, type TreeIndex } from './tree-index.ts';

/** Split a shell or unit command line into words (quotes and backslashes honoured, no expansion). */
export function splitWords(line: string): string[] {
  return splitShellWords(line).words;
}

/** Where an app's executable lives: "/opt/<name>/…" or "/usr/local/(s)bin/<name>". */
function appHome(exe: string): { name: string; prefix: string; extra: string[] } | undefined {
  let m = /^\/opt\/([^/]+)\/./.exec(exe);
  if (m) return { name: m[1]!, prefix: `/opt/${m[1]}`, extra: [] };
  m = /^\/usr\/local\/s?bin\/([^/]+)$/.exec(exe);
  if (m) {
    const n = m[1]!;
    return { name: n, prefix: exe, extra: [`/usr/local/lib/${n}`, `/usr/local/share/${n}`, `/usr/local/etc/${n}`] };
  }
  return undefined;
}

function containerName(raw: string): string {
  const n = raw.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '');
  return (n || 'app').slice(0, 63);
}

interface Found {
  exe: string;
  init: string[];
  env: Record<string, string>;
  workdir: string | null;
  /** Files that start the app (unit, init script) and links to them. */
  starters: string[];
  origin: string;
}

/** Simple `VAR=value` assignments of a shell script, for $VAR / ${VAR} in its start line. */
function shellVars(script: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of script.split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) vars.set(m[1]!, splitWords(m[2]!.replace(/\s+#.*$/, ''))[0] ?? '');
  }
  return vars;
}

function expand(word: string, vars: Map<string, string>): string {
  return word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, a, b) => vars.get(a ?? b) ?? '');
}

const COMMAND_PREFIX = new Set(['exec', 'nohup', 'setsid', 'then', 'do', 'else', '&&', '||', ';', '{']);

/** The command an init script starts: start-stop-daemon's --exec/--startas and the words after `--`, or a line running an app path. */
function commandOfScript(script: string): string[] | undefined {
  const vars = shellVars(script);
  for (const raw of script.split('\n')) {
    const line = raw.replace(/^\s*[^)\s]*\)\s*/, '').replace(/;;\s*$/, '').trim();
    if (line.startsWith('#')) continue;
    const words = splitWords(line).map((w) => expand(w, vars));
    const ssd = words.findIndex((w) => /(?:^|\/)start-stop-daemon$/.test(w));
    if (ssd >= 0 && words.slice(ssd).some((w) => w === '-S' || w === '--start')) {
      let exe: string | undefined;
      for (let i = ssd + 1; i < words.length && words[i] !== '--'; i++) {
        if (['-x', '--exec', '-a', '--startas'].includes(words[i]!)) exe = words[i + 1];
        const eq = /^--(?:exec|startas)=(.+)$/.exec(words[i]!);
        if (eq) exe = eq[1];
      }
      const dash = words.indexOf('--', ssd);
      if (exe && appHome(exe)) return [exe, ...(dash >= 0 ? words.slice(dash + 1) : [])];
      continue;
    }
    const start = words.findIndex((w) => appHome(w) !== undefined);
    // In command position: first word, after a launcher (exec, nohup …), a case label "start)" or a separator.
    const before = words[start - 1];
    const commandPosition = before === undefined || COMMAND_PREFIX.has(before) || before.endsWith(')') || before.endsWith(';');
    if (start >= 0 && commandPosition) {
      const argv = words.slice(start);
      // The command ends at the first shell operator or redirection.
      const end = argv.findIndex((w, i) => i > 0 && /^(?:&|&&|\|\||;|;;|\||>.*|2>.*|esac|fi)$/.test(w));
      return end > 0 ? argv.slice(0, end) : argv;
    }
  }
  return undefined;
}

/** [Service] keys of a systemd unit (last assignment wins, ExecStart's first non-empty one). */
function parseUnit(text: string): { exec?: string[]; env: Record<string, string>; workdir: string | null } {
  let section = '';
  let exec: string[] | undefined;
  const env: Record<string, string> = {};
  let workdir: string | null = null;
  for (const raw of text.replace(/\\\n/g, ' ').split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) section = line;
    if (section !== '[Service]' || line.startsWith('#') || !line.includes('=')) continue;
    const key = line.slice(0, line.indexOf('=')).trim();
    const value = line.slice(line.indexOf('=') + 1).trim();
    if (key === 'ExecStart' && value && !exec) exec = splitWords(value.replace(/^[-@:+!]+/, ''));
    if (key === 'Environment') {
      for (const w of splitWords(value)) {
        const i = w.indexOf('=');
        if (i > 0) env[w.slice(0, i)] = w.slice(i + 1);
      }
    }
    if (key === 'WorkingDirectory' && value.startsWith('/')) workdir = value;
  }
  return { exec, env, workdir };
}

/** Links (rcN.d/S??name, *.wants/unit) that point at a starter file. */
function linksTo(index: TreeIndex, target: string, under: RegExp): string[] {
  return index.entries
    .filter((e) => e.type === 'symlink' && under.test(parentOf(e.path)) && index.resolve(e.path)?.path === target)
    .map((e) => e.path);
}

/**
 * App candidates: trees under /opt/<name> or /usr/local started by a systemd unit, a sysvinit/busybox init
 * script or an inittab line. Updater footprints (already in `removed`) are never apps.
 */
export async function detectApps(index: TreeIndex, removed: PlanRemoval[]): Promise<{ apps: PlanContainer[]; review: PlanReview[] }> {
  const isRemoved = (p: string) => removed.some((r) => isUnder(p, r.path));
  const found: Found[] = [];
  const review: PlanReview[] = [];

  for (const e of index.entries) {
    if (isRemoved(e.path) || e.type !== 'file') continue;
    if (/^(?:\/usr)?\/lib\/systemd\/system\/[^/]+\.service$|^\/etc\/systemd\/system\/[^/]+\.service$/.test(e.path)) {
      const unit = parseUnit((await index.readText(e.path)) ?? '');
      if (unit.exec && unit.exec[0] && appHome(unit.exec[0])) {
        const starters = [e.path, ...linksTo(index, e.path, /^\/etc\/systemd\/system\/[^/]+\.(?:wants|requires)$/)];
        found.push({ exe: unit.exec[0], init: unit.exec, env: unit.env, workdir: unit.workdir, starters, origin: `systemd unit ${e.path}` });
      }
    } else if (/^\/etc\/(?:init\.d|rc\.d\/init\.d)\/[^/]+$/.test(e.path) && !/^rcS?$/.test(e.path.slice(e.path.lastIndexOf('/') + 1))) {
      const cmd = commandOfScript((await index.readText(e.path)) ?? '');
      if (cmd) {
        const starters = [e.path, ...linksTo(index, e.path, /^\/etc\/rc[0-6S]\.d$/)];
        found.push({ exe: cmd[0]!, init: cmd, env: {}, workdir: null, starters, origin: `init script ${e.path}` });
      }
    }
  }

  const inittab = await index.readText('/etc/inittab');
  for (const line of inittab?.split('\n') ?? []) {
    if (line.trim().startsWith('#')) continue;
    const fields = line.split(':');
    if (fields.length < 4) continue;
    const words = splitWords(fields.slice(3).join(':'));
    const exe = words.find((w) => appHome(w));
    if (!exe || isRemoved(exe)) continue;
    found.push({ exe, init: words.slice(words.indexOf(exe)), env: {}, workdir: null, starters: [], origin: `inittab line "${line.trim()}"` });
    review.push({
      item: '/etc/inittab',
      kind: 'inittab',
      reason: `the line "${line.trim()}" starts ${exe}, now in its own container; the base OS keeps /etc/inittab unchanged, so remove that line there`,
      file: null,
    });
  }

  const byName = new Map<string, PlanContainer>();
  for (const f of found) {
    const home = appHome(f.exe)!;
    if (!index.has(home.prefix) || isRemoved(home.prefix)) continue;
    const name = containerName(home.name);
    const existing = byName.get(name);
    const paths = [home.prefix, ...home.extra.filter((p) => index.has(p)), ...f.starters];
    if (existing) {
      // One tree started twice (unit and script): one container, every starter moves with it.
      existing.paths = [...new Set([...existing.paths, ...paths])].sort();
      continue;
    }
    byName.set(name, {
      name,
      kind: 'app',
      group: 'app',
      restart_policy: 'container',
      paths: [...new Set(paths)].sort(),
      init: f.init,
      env: f.env,
      workdir: f.workdir,
      storage: { 'lxc-overlay': 'boot' },
      origin: f.origin,
    });
  }
  return { apps: [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : 1)), review };
}
