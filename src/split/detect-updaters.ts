import type { PlanRemoval, UpdaterName } from './plan.ts';
import { isUnder, type TreeIndex } from './tree-index.ts';

interface Rule {
  updater: UpdaterName;
  what: string;
  /** Whole-path match; a matching directory is removed with everything below it. */
  re: RegExp;
}

const UNIT_DIRS = '(?:/usr)?/lib/systemd/system|/etc/systemd/system(?:/[^/]+\\.wants)?';
const unit = (glob: string) => new RegExp(`^(?:${UNIT_DIRS})/${glob}$`);
const sysv = (glob: string) => new RegExp(`^/etc/(?:init\\.d|rc\\.d/init\\.d|rc[0-6S]\\.d)/${glob}$`);
const bin = (glob: string) => new RegExp(`^(?:/usr)?/s?bin/${glob}$`);

/**
 * Footprints of the three image updaters on a root filesystem (client binaries, configuration, state, service
 * definitions, D-Bus policy, web UI), from their upstream install layouts (meta-mender, meta-rauc,
 * meta-swupdate). Bootloader-environment tools are listed apart: they go only when an updater was found.
 */
const RULES: Rule[] = [
  { updater: 'mender', what: 'Mender client', re: bin('mender(?:-update|-auth|-client|-connect|-snapshot)?') },
  { updater: 'mender', what: 'Mender configuration', re: /^\/etc\/mender(?:-connect\.conf)?$/ },
  { updater: 'mender', what: 'Mender state', re: /^(?:\/var\/lib|\/data)\/mender$/ },
  { updater: 'mender', what: 'Mender update modules and inventory scripts', re: /^\/usr\/share\/mender$/ },
  { updater: 'mender', what: 'Mender service', re: unit('mender[^/]*\\.(?:service|timer|socket)') },
  { updater: 'mender', what: 'Mender init script', re: sysv('(?:[SK][0-9]{2})?mender[^/]*') },
  { updater: 'mender', what: 'Mender D-Bus policy', re: /^\/usr\/share\/dbus-1\/system(?:\.d|-services)\/io\.mender\.[^/]+$/ },
  { updater: 'mender', what: 'Mender data partition link', re: /^\/var\/lib\/mender-(?:configure|monitor)$/ },
  { updater: 'rauc', what: 'RAUC client', re: bin('rauc') },
  { updater: 'rauc', what: 'RAUC configuration and keyring', re: /^\/etc\/rauc$/ },
  { updater: 'rauc', what: 'RAUC state', re: /^\/var\/lib\/rauc$/ },
  { updater: 'rauc', what: 'RAUC helpers', re: /^\/usr\/lib\/rauc$/ },
  { updater: 'rauc', what: 'RAUC service', re: unit('rauc[^/]*\\.(?:service|timer|socket)') },
  { updater: 'rauc', what: 'RAUC init script', re: sysv('(?:[SK][0-9]{2})?rauc[^/]*') },
  { updater: 'rauc', what: 'RAUC D-Bus policy', re: /^\/usr\/share\/dbus-1\/system(?:\.d|-services)\/de\.pengutronix\.rauc\.[^/]+$/ },
  { updater: 'swupdate', what: 'SWUpdate client', re: bin('swupdate(?:-client|-progress|-ipc|-sysrestart|-sendtohawkbit|-hawkbitcfg)?') },
  { updater: 'swupdate', what: 'SWUpdate configuration', re: /^\/etc\/swupdate(?:\.cfg)?$/ },
  { updater: 'swupdate', what: 'SWUpdate helpers', re: /^\/usr\/lib\/swupdate$/ },
  { updater: 'swupdate', what: 'SWUpdate state', re: /^\/var\/lib\/swupdate$/ },
  { updater: 'swupdate', what: 'SWUpdate web UI', re: /^(?:\/var)?\/www\/swupdate$/ },
  { updater: 'swupdate', what: 'SWUpdate service', re: unit('swupdate[^/]*\\.(?:service|timer|socket)') },
  { updater: 'swupdate', what: 'SWUpdate init script', re: sysv('(?:[SK][0-9]{2})?swupdate[^/]*') },
];

/** U-Boot/GRUB environment tools the updaters use to switch slots (libubootenv, meta-mender's grub-mender-grubenv). */
const BOOTENV_RE = [
  bin('fw_(?:printenv|setenv)'),
  /^\/etc\/fw_env\.config$/,
  bin('grub-mender-grubenv-(?:print|set)'),
];

/**
 * The removal list: every updater footprint present in the tree, then the bootloader-environment tooling
 * when at least one updater was found (it only served them). A path already inside a removed directory is
 * not listed again.
 */
export function detectUpdaterRemovals(index: TreeIndex): PlanRemoval[] {
  const found: PlanRemoval[] = [];
  const covered = (path: string) => found.some((r) => isUnder(path, r.path));
  for (const entry of index.entries) {
    if (covered(entry.path)) continue;
    const rule = RULES.find((r) => r.re.test(entry.path));
    if (rule) found.push({ path: entry.path, updater: rule.updater, what: rule.what });
  }
  if (found.length === 0) return found;
  // Attribute the shared tooling to the updater found first in the tree's order of preference.
  const owner = (['mender', 'rauc', 'swupdate'] as const).find((u) => found.some((r) => r.updater === u))!;
  for (const entry of index.entries) {
    if (covered(entry.path)) continue;
    if (BOOTENV_RE.some((re) => re.test(entry.path))) {
      found.push({ path: entry.path, updater: owner, what: 'bootloader environment tool used by the updater' });
    }
  }
  return found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
