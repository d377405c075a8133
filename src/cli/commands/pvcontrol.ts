import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../../errors.ts';
import { parseCommandArgs } from '../args.ts';
import { diagnostic, print, printJson } from '../output.ts';

export const summary = "talk to a running runtime's control socket with Pantavisor's pvcontrol verbs";
export const usage = [
  'pvmigrate pvcontrol [--socket PATH | --storage DIR] [--json] <verb>',
  '  ls                                  containers (GET /containers)',
  '  groups ls                           groups (GET /groups)',
  '  steps ls | get REV | show-progress REV',
  '  steps install <export.tgz|repo> [locals/NAME]   upload the state, then every object',
  '  containers stop|start|restart NAME',
  '  signal ready                        (from inside a container)',
  '  commands poweroff|reboot [MESSAGE] | run REV   (run = LOCAL_RUN)',
  '  gc                                  garbage collection (POST /storage/gc)',
  'The socket defaults to $PV_CTRL, /pantavisor/pv-ctrl inside a container, or <storage>/../pv-ctrl.',
].join('\n');

interface Call {
  method: string;
  path: string;
  body?: unknown;
}

function callFor(words: string[]): Call {
  const [a, b, c, ...rest] = words;
  const need = (v: string | undefined, what: string): string => {
    if (!v) throw new UsageError(`missing ${what}; usage:\n${usage}`);
    return v;
  };
  if (a === 'ls' && !b) return { method: 'GET', path: '/containers' };
  if (a === 'groups' && b === 'ls' && !c) return { method: 'GET', path: '/groups' };
  if (a === 'steps') {
    if (b === 'ls' && !c) return { method: 'GET', path: '/steps' };
    if (b === 'get') return { method: 'GET', path: `/steps/${need(c, 'REV')}` };
    if (b === 'show-progress') return { method: 'GET', path: `/steps/${need(c, 'REV')}/progress` };
  }
  if (a === 'containers' && (b === 'stop' || b === 'start' || b === 'restart') && rest.length === 0) {
    return { method: 'PUT', path: `/containers/${encodeURIComponent(need(c, 'NAME'))}`, body: { action: b } };
  }
  if (a === 'signal' && b === 'ready' && !c) return { method: 'POST', path: '/signal', body: { type: 'ready', payload: '' } };
  if (a === 'commands' && b === 'run' && rest.length === 0) return { method: 'POST', path: '/commands', body: { op: 'LOCAL_RUN', payload: need(c, 'REV') } };
  if (a === 'gc' && !b) return { method: 'POST', path: '/storage/gc' };
  if (a === 'commands' && (b === 'poweroff' || b === 'reboot')) {
    return { method: 'POST', path: '/commands', body: { op: b === 'poweroff' ? 'POWEROFF_DEVICE' : 'REBOOT_DEVICE', payload: [c, ...rest].filter(Boolean).join(' ') } };
  }
  throw new UsageError(`unknown pvcontrol verb '${words.join(' ')}'; usage:\n${usage}`);
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('pvcontrol', argv, { socket: { type: 'string' }, storage: { type: 'string' } });
  const socket = values.socket ?? (values.storage ? join(dirname(resolve(values.storage)), 'pv-ctrl') : process.env.PV_CTRL ?? (existsSync('/pantavisor/pv-ctrl') ? '/pantavisor/pv-ctrl' : undefined));
  if (!socket) throw new UsageError('no control socket: pass --socket PATH or --storage DIR (or set PV_CTRL)');
  const { ctrlRequest } = await import('../../../runtime/ctrl-client.ts');
  if (positionals[0] === 'steps' && positionals[1] === 'install') {
    const [, , source, rev, ...extra] = positionals;
    if (!source || extra.length) throw new UsageError(`usage: pvmigrate pvcontrol steps install <export.tgz|repo> [locals/NAME]`);
    const { installStep } = await import('../../../runtime/step-upload.ts');
    const r = await installStep(socket, source, rev);
    if (values.json) printJson(r);
    else print(`installed ${r.rev}: state and ${r.objects} objects sent; run it with pvmigrate pvcontrol commands run ${r.rev}`);
    return 0;
  }
  const call = callFor(positionals);
  const res = await ctrlRequest(socket, call.method, call.path, call.body);
  const ok = res.status >= 200 && res.status < 300;
  if (ok) {
    if (values.json) {
      // Exactly one JSON document: the endpoint's answer, or {} for an empty one.
      process.stdout.write((res.body.trim() || '{}') + '\n');
    } else if (res.body.trim() && res.body.trim() !== '{}') print(prettyOrRaw(res.body));
    return 0;
  }
  let msg = res.body;
  try {
    msg = (JSON.parse(res.body) as { Error?: string }).Error ?? res.body;
  } catch {
    /* not JSON */
  }
  if (values.json) process.stdout.write(JSON.stringify({ status: res.status, error: msg }) + '\n');
  diagnostic(`pvmigrate pvcontrol: ${call.method} ${call.path} answered ${res.status}: ${msg}`);
  return 1;
}

function prettyOrRaw(body: string): string {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}
