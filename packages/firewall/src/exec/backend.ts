/**
 * Which iptables the restore programs are. Legacy iptables-restore (`(legacy)` in `--version`)
 * takes the global xtables lock (/run/xtables.lock) when it starts and keeps it until it exits, so
 * two of them cannot be held side by side waiting for their COMMIT as commit.ts holds
 * iptables-nft-restore: the second would wait for the lock, never reach its input, and the apply
 * would wait for it until its timeout. Legacy programs are run one at a time instead.
 * @module
 */
import type { TableFamily } from '../model.js';
import { programs, type Starter } from './runner.js';

const known = new Map<string, Promise<boolean>>();

/**
 * Whether `family`'s restore program is legacy iptables, asked once per process and `PATH`
 * (`iptables-restore --version`, through `start`). ebtables is always its nf_tables variant. An
 * answer that names neither backend (a program that cannot run, a runner that does not run
 * programs) counts as nf_tables and is asked again next time.
 */
export function isLegacy(start: Starter, family: TableFamily): Promise<boolean> {
  if (family === 'bridge') return Promise.resolve(false);
  const key = `${family}\0${process.env.PATH ?? ''}`;
  const cached = known.get(key);
  if (cached) return cached;
  const asked = start(programs(family).restore, ['--version'])
    .end('')
    .then((r) => {
      const legacy = /\(legacy\)/.test(r.stdout);
      if (!legacy && !/\(nf_tables\)/.test(r.stdout)) known.delete(key);
      return legacy;
    })
    .catch(() => {
      known.delete(key);
      return false;
    });
  known.set(key, asked);
  return asked;
}
