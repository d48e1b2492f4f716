/**
 * Errors of @vmhost/firewall. Input errors are @vmhost/net's {@link ValidationError}; what goes
 * wrong while reading or applying rules is a {@link FirewallError}.
 * @module
 */
import { VmhostError } from '@vmhost/net';
import type { TableFamily } from './model.js';
import { programs } from './exec/runner.js';

/**
 * The step that failed: `save` (reading the state), `parse` (a committing program refused its
 * batch while reading it, before anything was committed), `test` (`--test` refused it), `commit`,
 * `drop` (deleting a table), `rollback`.
 */
export type FirewallStage = 'save' | 'parse' | 'test' | 'commit' | 'drop' | 'rollback';

/**
 * iptables-save/-restore (ip6tables, ebtables) failed. Codes: `EFW_SAVE` (reading the state),
 * `EFW_RESTORE` (a batch was refused; nothing of this call stays applied), `EFW_ROLLBACK` (a batch
 * failed and putting the previous state back failed too: the state is unknown, see `cause` and
 * `rollbackError`).
 */
export class FirewallError extends VmhostError {
  /** 4, 6 or `'bridge'` (ebtables). */
  readonly family: TableFamily;
  /** Which step failed. */
  readonly stage: FirewallStage;
  /** The program's exit status. */
  readonly exitCode: number | null;
  /** The program's standard error. */
  readonly stderr: string;
  /** The batch line iptables-restore complained about (from `line N:` or `at line: N` in its message), if any. */
  readonly batchLine?: string;
  /** For `EFW_ROLLBACK`: why the rollback failed. */
  readonly rollbackError?: unknown;
  constructor(
    code: 'EFW_SAVE' | 'EFW_RESTORE' | 'EFW_ROLLBACK',
    info: { family: TableFamily; stage: FirewallStage; exitCode: number | null; stderr: string; batch?: string; rollbackError?: unknown },
    options?: { cause?: unknown },
  ) {
    const m = /line:? (\d+)/.exec(info.stderr);
    const batchLine = (m && info.batch ? info.batch.split('\n')[Number(m[1]) - 1] : undefined) || undefined;
    const prog = info.stage === 'save' ? programs(info.family).save : programs(info.family).restore;
    let msg = `${prog} (${info.stage}) failed with status ${String(info.exitCode)}: ${info.stderr.trim()}`;
    if (batchLine !== undefined) msg += ` [batch line: ${batchLine}]`;
    if (code === 'EFW_ROLLBACK') msg += `; rolling back failed too: ${String((info.rollbackError as Error)?.message ?? info.rollbackError)}`;
    super(code, msg, options);
    this.family = info.family;
    this.stage = info.stage;
    this.exitCode = info.exitCode;
    this.stderr = info.stderr;
    if (batchLine !== undefined) this.batchLine = batchLine;
    if (info.rollbackError !== undefined) this.rollbackError = info.rollbackError;
  }
}
