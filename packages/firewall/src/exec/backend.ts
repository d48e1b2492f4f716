/**
 * Which iptables the programs are: iptables-nft or legacy iptables. Legacy iptables-restore
 * (`(legacy)` in `--version`) takes the global xtables lock (/run/xtables.lock) when it starts and
 * keeps it until it exits, so two of them cannot be held side by side waiting for their COMMIT as
 * commit.ts holds iptables-nft-restore: the second would wait for the lock, never reach its input,
 * and the apply would wait for it until its timeout. Legacy programs are run one at a time
 * instead. Legacy iptables also makes no nf_tables generation events (what `vmhost run` watches).
 * @module
 */
import type { TableFamily } from '../model.js';
import { programs, starterFor, type ExecOptions, type Starter } from './runner.js';

/** What `iptables-restore --version` names: `nf_tables`, `legacy`, or `unknown` (it could not be run, or named neither). */
export type IptablesBackend = 'nf_tables' | 'legacy' | 'unknown';

const known = new Map<string, Promise<IptablesBackend>>();

/** {@link iptablesBackend} through `start`, for `family` (ebtables is always its nf_tables variant). */
export function backendOf(start: Starter, family: TableFamily): Promise<IptablesBackend> {
  if (family === 'bridge') return Promise.resolve('nf_tables');
  const key = `${family}\0${process.env.PATH ?? ''}`;
  const cached = known.get(key);
  if (cached) return cached;
  const asked = start(programs(family).restore, ['--version'])
    .end('')
    .then((r): IptablesBackend => (/\(legacy\)/.test(r.stdout) ? 'legacy' : /\(nf_tables\)/.test(r.stdout) ? 'nf_tables' : 'unknown'))
    .catch((): IptablesBackend => 'unknown')
    .then((b) => {
      if (b === 'unknown') known.delete(key); // asked again next time
      return b;
    });
  known.set(key, asked);
  return asked;
}

/**
 * Which iptables `iptables-restore` is (`iptables-restore --version`), asked once per process and
 * `PATH`; an `unknown` answer is asked again next time. {@link apply} runs legacy iptables' restore
 * programs one at a time (docs/firewall-atomic-apply.md).
 */
export function iptablesBackend(options: ExecOptions = {}): Promise<IptablesBackend> {
  return backendOf(starterFor(options), 4);
}
