/** A client of the control socket: one HTTP request over a unix socket (what pvcontrol does with curl). */
import { request } from 'node:http';
import { EnvironmentError } from '../src/errors.ts';

export interface CtrlResponse {
  status: number;
  body: string;
}

export function ctrlRequest(socketPath: string, method: string, path: string, body?: unknown, timeoutMs = 30000): Promise<CtrlResponse> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request(
      { socketPath, method, path, timeout: timeoutMs, headers: data === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          text += d;
          if (text.length > 64 << 20) req.destroy(new Error('response larger than 64 MiB'));
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? new EnvironmentError('no-ctrl', `no runtime answers on ${socketPath}; start one with pvmigrate run or pass --socket`, { file: socketPath })
          : new EnvironmentError('ctrl-io', `control socket request failed: ${err.message}`, { file: socketPath }),
      ),
    );
    req.end(data);
  });
}
