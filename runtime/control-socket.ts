/**
 * Pantavisor's control socket: HTTP over unix sockets (PV:ctrl/*, docs/reference/pantavisor-commands.md).
 * The device socket (<storage>/../pv-ctrl or --ctrl) serves the host; each container gets its own socket,
 * bind-mounted at /pantavisor/pv-ctrl, so a request's container is known from the socket it came in on
 * (Pantavisor uses the peer's credentials; Node cannot read SO_PEERCRED).
 * Errors are {"Error":"…"} as PV's pv_ctrl_utils_send_error writes them.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { stat, unlink } from 'node:fs/promises';
import type { Engine } from './engine.ts';
import type { Storage } from './storage.ts';

export type DeviceCommand = 'REBOOT_DEVICE' | 'POWEROFF_DEVICE';

export interface ControlContext {
  storage: Storage;
  engine(): Engine | undefined;
  currentRev(): string | undefined;
  /** Accepted power command: the runtime shuts down (poweroff) or restarts (reboot) after answering. */
  command(op: DeviceCommand, message: string): void;
  buildinfo: Record<string, unknown>;
}

const MAX_BODY = 64 * 1024;

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

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, 'Request too large');
    chunks.push(c as Buffer);
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
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
      case 'GET /buildinfo':
        return send(res, 200, this.ctx.buildinfo);
      case 'POST /commands': {
        const { op, payload } = await readJson(req);
        if (op !== 'REBOOT_DEVICE' && op !== 'POWEROFF_DEVICE') throw new HttpError(400, `Command '${String(op)}' not supported by this runtime`);
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
    if (!(await storage.listRevisions()).includes(rev)) throw new HttpError(404, 'Step not found');
    if (progress) {
      const p = await storage.readProgress(rev);
      if (!p) throw new HttpError(404, 'Progress not found');
      return send(res, 200, p);
    }
    return send(res, 200, await storage.readStateText(rev), true);
  }
}
