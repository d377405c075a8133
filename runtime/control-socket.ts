/**
 * Pantavisor's control socket: HTTP over unix sockets (PV:ctrl/*, docs/reference/pantavisor-commands.md).
 * The device socket (<storage>/../pv-ctrl or --ctrl) serves the host; each container gets its own socket,
 * bind-mounted at /pantavisor/pv-ctrl, so a request's container is known from the socket it came in on
 * (Pantavisor uses the peer's credentials; Node cannot read SO_PEERCRED).
 * Errors are {"Error":"…"} as PV's pv_ctrl_utils_send_error writes them.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createReadStream } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Engine } from './engine.ts';
import type { Storage } from './storage.ts';
import type { Updater } from './update.ts';

export type DeviceCommand = 'REBOOT_DEVICE' | 'POWEROFF_DEVICE';

export interface ControlContext {
  storage: Storage;
  engine(): Engine | undefined;
  currentRev(): string | undefined;
  /** Accepted power command: the runtime shuts down (poweroff) or restarts (reboot) after answering. */
  command(op: DeviceCommand, message: string): void;
  updater: Updater;
  buildinfo: Record<string, unknown>;
}

const MAX_BODY = 64 * 1024;
/** A state posted to /steps: generous, still bounded. */
const MAX_STATE = 16 * 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown, raw = false): void {
  const text = raw ? String(body) : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) throw new HttpError(413, 'Request too large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readBody(req, MAX_BODY);
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new HttpError(400, 'Invalid JSON');
  }
}

export class ControlServer {
  private readonly servers = new Map<string, Server>();
  constructor(private readonly ctx: ControlContext) {}

  /** Serve on `path`; `caller` names the container whose socket this is (undefined for the device socket). */
  async listen(path: string, caller?: string): Promise<void> {
    const st = await stat(path).catch(() => undefined);
    if (st?.isSocket()) await unlink(path); // stale socket of a previous run
    const server = createServer((req, res) => {
      this.handle(req, res, caller).catch((err: unknown) => {
        const e = err instanceof HttpError ? err : new HttpError(500, `Internal error: ${(err as Error).message}`);
        if (!res.headersSent) send(res, e.status, { Error: e.message });
        else res.destroy();
      });
    });
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.servers.set(path, server);
  }

  listening(path: string): boolean {
    return this.servers.has(path);
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.servers].map(async ([path, s]) => {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
        await unlink(path).catch(() => undefined);
      }),
    );
    this.servers.clear();
  }

  private async handle(req: IncomingMessage, res: ServerResponse, caller: string | undefined): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? 'GET';
    const engine = this.ctx.engine();
    const route = `${method} /${parts[0] ?? ''}`;
    switch (route) {
      case 'GET /containers':
        if (parts.length !== 1) break;
        return send(res, 200, engine?.containersJson() ?? []);
      case 'PUT /containers': {
        if (parts.length !== 2) break;
        const c = engine?.container(parts[1]);
        if (!c) throw new HttpError(404, 'Container not found');
        if (c.ctx.spec.restartPolicy !== 'container') {
          throw new HttpError(403, "Container has restart_policy 'system' and cannot be stopped/started via API. Only containers with restart_policy 'container' can be controlled.");
        }
        const { action } = await readJson(req);
        if (action === 'stop') await c.stop({ user: true });
        else if (action === 'start') {
          if (c.status !== 'STOPPED' && c.status !== 'MOUNTED') throw new HttpError(400, 'Container must be in STOPPED state to start. Current state does not allow start.');
          await c.userStart();
        } else if (action === 'restart') {
          await c.stop({ user: true });
          await c.userStart();
        } else throw new HttpError(400, "Invalid action. Use 'start', 'stop', or 'restart'");
        return send(res, 200, {});
      }
      case 'GET /groups':
        if (parts.length !== 1) break;
        return send(res, 200, engine?.groupsJson() ?? []);
      case 'POST /signal': {
        const body = await readJson(req);
        if (body.type !== 'ready') throw new HttpError(400, `Signal type '${String(body.type)}' not supported`);
        const c = caller ? engine?.container(caller) : undefined;
        if (!c) throw new HttpError(400, 'Signal not sent from a container of the running revision');
        if (!c.signalReady()) throw new HttpError(400, `Container '${c.name}' has not status_goal READY`);
        return send(res, 200, {});
      }
      case 'GET /steps':
        return this.steps(res, parts.slice(1));
      case 'PUT /steps': {
        const rev = parts.slice(1).join('/');
        const a = await this.ctx.updater.installStep(rev, await readBody(req, MAX_STATE));
        return a.error ? send(res, a.status, { Error: a.error }) : send(res, 200, {});
      }
      case 'GET /objects': {
        if (parts.length === 1) {
          const names = await readdir(this.ctx.storage.objectsDir).catch(() => [] as string[]);
          return send(res, 200, names.filter((n) => /^[0-9a-f]{64}$/.test(n)).sort());
        }
        if (parts.length !== 2 || !/^[0-9a-f]{64}$/.test(parts[1]) || !(await this.ctx.storage.objects.has(parts[1]))) throw new HttpError(404, 'Object not found');
        const path = this.ctx.storage.objects.path(parts[1]);
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': (await stat(path)).size });
        await pipeline(createReadStream(path), res);
        return;
      }
      case 'PUT /objects': {
        if (parts.length !== 2 || !/^[0-9a-f]{64}$/.test(parts[1])) throw new HttpError(400, 'Object name must be a sha256');
        const length = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
        const a = await this.ctx.updater.putObject(parts[1], req, Number.isFinite(length) ? length : undefined);
        return a.error ? send(res, a.status, { Error: a.error }) : send(res, 200, {});
      }
      case 'POST /storage':
        if (parts[1] !== 'gc' || parts.length !== 2) break;
        if (this.ctx.updater.inProgress) throw new HttpError(503, 'an update is ongoing');
        return send(res, 200, { reclaimed: await this.ctx.updater.gc() });
      case 'GET /buildinfo':
        return send(res, 200, this.ctx.buildinfo);
      case 'POST /commands': {
        const { op, payload } = await readJson(req);
        if (op === 'LOCAL_RUN') {
          if (typeof payload !== 'string' || payload === '') throw new HttpError(400, 'LOCAL_RUN needs the revision as payload');
          const a = await this.ctx.updater.run(payload);
          return a.error ? send(res, a.status, { Error: a.error }) : send(res, 200, {});
        }
        if (op !== 'REBOOT_DEVICE' && op !== 'POWEROFF_DEVICE') throw new HttpError(400, `Command '${String(op)}' not supported by this runtime`);
        if (this.ctx.updater.inProgress) throw new HttpError(503, 'an update is ongoing');
        send(res, 200, {});
        this.ctx.command(op, typeof payload === 'string' ? payload : '');
        return;
      }
    }
    throw new HttpError(404, `No endpoint ${method} ${url.pathname}`);
  }

  /** /steps, /steps/<rev>, /steps/<rev>/progress with rev "0", "3" or "locals/<name>". */
  private async steps(res: ServerResponse, rest: string[]): Promise<void> {
    const { storage } = this.ctx;
    if (rest.length === 0) {
      const revs = await storage.listRevisions();
      const out = await Promise.all(
        revs.map(async (rev) => {
          const st = await stat(storage.statePath(rev));
          const p = await storage.readProgress(rev);
          return { name: rev, date: st.mtime.toISOString(), commitmsg: '', status: p?.status ?? '', current: rev === this.ctx.currentRev() };
        }),
      );
      return send(res, 200, out);
    }
    const progress = rest[rest.length - 1] === 'progress';
    const rev = (progress ? rest.slice(0, -1) : rest).join('/');
    if (progress) {
      // A refused step keeps its progress (WONTGO and why) after its state is dropped.
      const p = await storage.readProgress(rev).catch(() => undefined);
      if (!p) throw new HttpError(404, 'Step not found');
      return send(res, 200, p);
    }
    if (!(await storage.listRevisions()).includes(rev)) throw new HttpError(404, 'Step not found');
    return send(res, 200, await storage.readStateText(rev), true);
  }
}
