/**
 * Progress documents with Pantavisor's exact statuses, numbers and messages (PV:update/update_progress.c,
 * reference §8). Final statuses: DONE, UPDATED, WONTGO, ERROR.
 */
import type { Progress } from './storage.ts';

/**
 * The `downloads.total` figures of a DOWNLOADING progress (reference §8). A local device learns an object's
 * size only when its upload starts (Content-Length) or ends, so total_size counts the objects offered so far.
 */
export interface Downloads {
  totalSize: number;
  downloaded: number;
  /** Seconds since the epoch when DOWNLOADING began. */
  startTime: number;
}

const p = (status: string, progress: number, msg: string, retries: number): Progress => ({ status, 'status-msg': msg, progress, retries });

export const progress = {
  ready: (retries = 0) => p('NEW', 0, 'Update ready to be run', retries),
  queued: (retries: number, max: number) => p('QUEUED', 5, `Retried ${retries} of ${max}`, retries),
  downloading: (retries: number, max: number, downloads: Downloads, attempt = 0) => ({
    ...p('DOWNLOADING', 25, `Downloading update artifacts, retry ${attempt} of ${max}`, retries),
    downloads: { total: { object_name: 'total', object_id: 'none', total_size: downloads.totalSize, total_downloaded: downloads.downloaded, start_time: downloads.startTime, current_time: Math.floor(Date.now() / 1000) } },
  }),
  applied: (retries: number) => p('INPROGRESS', 50, 'Update applied', retries),
  rebooting: (retries: number) => p('INPROGRESS', 50, 'Rebooting', retries),
  transitioning: (retries: number) => p('INPROGRESS', 50, 'Transitioning to new revision without rebooting', retries),
  trying: (retries: number) => p('INPROGRESS', 50, 'Trying new revision', retries),
  testingReboot: (retries: number) => p('TESTING', 75, 'Awaiting to set rollback point if update is stable', retries),
  testingNoReboot: (retries: number) => p('TESTING', 75, 'Awaiting to see if update is stable', retries),
  done: (retries: number) => p('DONE', 100, 'Update finished, revision set as rollback point', retries),
  updated: (retries: number) => p('UPDATED', 100, 'Update finished, revision not set as rollback point', retries),
  wontgo: (msg: string, retries: number) => p('WONTGO', 100, msg, retries),
  error: (msg: string, retries: number) => p('ERROR', 100, msg, retries),
};

export const FINAL = new Set(['DONE', 'UPDATED', 'WONTGO', 'ERROR']);
