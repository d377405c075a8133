import type { PlanContainer, PlanReview } from '../split/plan.ts';
import type { ImageArchive } from './oci-image.ts';

function containerNameOf(image: ImageArchive, payload: string): string {
  const fromRef = image.ref?.replace(/[:@].*$/, '').split('/').pop();
  const fromFile = payload.replace(/^.*[:/]/, '').replace(/\.[^.]*$/, '');
  return (fromRef || fromFile || 'app').toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 63) || 'app';
}

/**
 * A docker/OCI image as one container, as `pvr app add` makes it: init from entrypoint + cmd (docker's
 * semantics; /sbin/init when both are empty), environment, working dir, each VOLUME persisted (permanent),
 * the overlay on boot storage. `taken` holds names in use; a clash gets a numeric suffix.
 */
export function imageContainer(image: ImageArchive, payload: string, taken: Set<string>): { container: PlanContainer; review: PlanReview[] } {
  const { config } = image;
  const base = containerNameOf(image, payload);
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${base}-${i}`;
  taken.add(name);
  const argv = [...config.entrypoint, ...config.cmd];
  const env: Record<string, string> = {};
  for (const e of config.env) {
    const i = e.indexOf('=');
    if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
  }
  const storage: PlanContainer['storage'] = { 'lxc-overlay': 'boot' };
  for (const v of config.volumes) storage[v.replace(/\/+$/, '') || '/'] = 'permanent';
  const review: PlanReview[] = [];
  let init = argv.length > 0 ? argv : ['/sbin/init'];
  if (!init[0]!.startsWith('/')) {
    // The runtime does not search PATH for init; the image's binaries are conventionally in /bin or /usr/bin.
    review.push({ item: payload, kind: 'unknown', reason: `the image runs '${init[0]}' through PATH; init was set to /bin/${init[0]}, check it`, file: null });
    init = [`/bin/${init[0]}`, ...init.slice(1)];
  }
  return {
    container: {
      name,
      kind: 'image',
      group: 'app',
      restart_policy: 'container',
      paths: [],
      payload,
      init,
      env,
      workdir: config.workdir,
      storage,
      origin: `${image.kind} image ${image.ref ?? payload}`,
    },
    review,
  };
}
